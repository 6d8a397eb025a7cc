// Dexie 4: the record table and an outbox table written in one db.transaction('rw', ...).
import Dexie from 'dexie';
import { expose, coldStartIfAsked } from './common.js';

const scriptStart = performance.now();
let db;
const adapter = {
  name: 'dexie',
  async open() {
    db = new Dexie('bench');
    db.version(1).stores({ notes: 'id', outbox: 'seq' });
    await db.open();
  },
  writeOne(rec, entry) {
    return db.transaction('rw', db.notes, db.outbox, async () => {
      await db.notes.put(rec);
      await db.outbox.put(entry);
    });
  },
  async seed(recs) {
    await db.notes.bulkPut(recs);
  },
  readAll() {
    return db.notes.toArray();
  },
  count(tag) {
    return db.notes.where('id').between(`${tag}-`, `${tag}-\uffff`).count();
  },
};
expose(adapter);
coldStartIfAsked(adapter, scriptStart);
