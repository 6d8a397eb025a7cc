// Scale section, raw IndexedDB: the floor. A record store with an index on `n`, an outbox
// store; a put writes both in one transaction, durable at `oncomplete`. Raw IndexedDB has no
// live queries, so the floor of one is: after the commit, re-read the page (index getAll with a
// count of 50) or the whole list (index getAll); other tabs learn of a commit through a
// BroadcastChannel message and re-read the same way.
import { exposeScale, firstPageIfAsked, outboxEntry, PAGE } from './scale-common.js';
import { done, req2p } from './promises.js';

let db;
const readByN = (limit) => req2p(db.transaction('notes', 'readonly').objectStore('notes').index('n').getAll(null, limit));

// Local listeners (this tab's live queries) and other tabs' commits.
const listeners = new Set();
let channel;
const changed = () => {
  for (const l of listeners) l();
};
const live = (limit) => (onRows) => {
  const rerun = () => readByN(limit).then(onRows);
  listeners.add(rerun);
  rerun();
  return () => listeners.delete(rerun);
};

const adapter = {
  name: 'idb',
  async open() {
    const req = indexedDB.open('scale', 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore('notes', { keyPath: 'id' }).createIndex('n', 'n');
      req.result.createObjectStore('outbox');
    };
    db = await req2p(req);
    channel = new BroadcastChannel('scale-idb');
    channel.onmessage = changed;
  },
  firstPage: () => readByN(PAGE),
  watchPage: live(PAGE),
  watchAll: live(undefined),
  async put(rec) {
    const tx = db.transaction(['notes', 'outbox'], 'readwrite');
    tx.objectStore('notes').put(rec);
    const e = outboxEntry(rec);
    tx.objectStore('outbox').put(e, `${Date.now()}-${e.seq}-${Math.random()}`);
    await done(tx);
    channel.postMessage('changed');
    changed();
  },
  async seed(recs) {
    const tx = db.transaction(['notes'], 'readwrite');
    const rs = tx.objectStore('notes');
    for (const r of recs) rs.put(r);
    await done(tx);
  },
  count: () => req2p(db.transaction('notes', 'readonly').objectStore('notes').count()),
  extra: {
    // (d) the floor of a pull: fetch ferry-server's pages (Ferry's page size) and put each page
    // in one transaction with the cursor.
    async pullLimit({ token, limit }) {
      const t0 = performance.now();
      await adapter.open();
      let cursor = 0;
      let total = 0;
      for (;;) {
        const res = await fetch(`/v1/sync/changes?cursor=${cursor}&limit=${limit}`, { headers: { authorization: `Bearer ${token}` } });
        if (!res.ok) throw new Error(`pull ${res.status}: ${await res.text()}`);
        const page = await res.json();
        const tx = db.transaction(['notes', 'outbox'], 'readwrite');
        const rs = tx.objectStore('notes');
        for (const r of page.changes) rs.put({ id: r.id, ...r.fields });
        tx.objectStore('outbox').put({ cursor: page.cursor }, 'cursor');
        await done(tx);
        total += page.changes.length;
        cursor = page.cursor;
        if (!page.has_more) break;
      }
      return { ms: performance.now() - t0, total };
    },
  },
};
exposeScale(adapter);
firstPageIfAsked(adapter);
