// Scale section, Dexie 4 with its best ordinary API: an index on `n`, `bulkPut` to seed,
// `liveQuery(() => db.notes.orderBy('n').limit(50).toArray())` for the live page. Each put
// writes the record and an outbox entry in one transaction, as in the other benchmarks.
import Dexie, { liveQuery } from 'dexie';
import { exposeScale, firstPageIfAsked, outboxEntry, PAGE } from './scale-common.js';

let db;
const live = (query) => (onRows) => {
  const sub = liveQuery(query).subscribe({ next: onRows, error: (e) => console.error(String(e)) });
  return () => sub.unsubscribe();
};
const adapter = {
  name: 'dexie',
  async open() {
    db = new Dexie('scale');
    db.version(1).stores({ notes: 'id, n', outbox: 'seq' });
    await db.open();
  },
  firstPage: () => db.notes.orderBy('n').limit(PAGE).toArray(),
  watchPage: live(() => db.notes.orderBy('n').limit(PAGE).toArray()),
  watchAll: live(() => db.notes.orderBy('n').toArray()),
  put(rec) {
    return db.transaction('rw', db.notes, db.outbox, async () => {
      await db.notes.put(rec);
      await db.outbox.put(outboxEntry(rec));
    });
  },
  seed: (recs) => db.notes.bulkPut(recs),
  count: () => db.notes.count(),
};
exposeScale(adapter);
firstPageIfAsked(adapter);
