// PouchDB (pouchdb-browser, IndexedDB adapter): bulkDocs of the record and its outbox doc.
import PouchDB from 'pouchdb-browser';
import { expose, coldStartIfAsked } from './common.js';

const scriptStart = performance.now();
let db;
const check = (res) => {
  for (const r of res) if (r.error) throw new Error(`pouchdb: ${r.error} ${r.reason}`);
};
const adapter = {
  name: 'pouchdb',
  async open() {
    db = new PouchDB('bench');
    await db.info();
  },
  async writeOne(rec, entry) {
    check(await db.bulkDocs([{ _id: rec.id, ...rec }, { _id: `~outbox-${String(entry.seq).padStart(12, '0')}`, ...entry }]));
  },
  async seed(recs) {
    check(await db.bulkDocs(recs.map((r) => ({ _id: r.id, ...r }))));
  },
  async readAll() {
    const res = await db.allDocs({ include_docs: true, startkey: 'a', endkey: 'z\uffff' });
    return res.rows;
  },
  async count(tag) {
    const res = await db.allDocs({ startkey: `${tag}-`, endkey: `${tag}-\uffff` });
    return res.rows.length;
  },
};
expose(adapter);
coldStartIfAsked(adapter, scriptStart);
