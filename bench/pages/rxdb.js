// RxDB on its free Dexie storage: insert into `notes` and into an `outbox` collection.
import { createRxDatabase } from 'rxdb';
import { getRxStorageDexie } from 'rxdb/plugins/storage-dexie';
import { expose, coldStartIfAsked } from './common.js';

const scriptStart = performance.now();
let db;
const noteSchema = {
  version: 0,
  primaryKey: 'id',
  type: 'object',
  properties: {
    id: { type: 'string', maxLength: 64 },
    title: { type: 'string' },
    body: { type: 'string' },
    done: { type: 'boolean' },
    n: { type: 'number' },
    tags: { type: 'array', items: { type: 'string' } },
  },
  required: ['id'],
};
const outboxSchema = {
  version: 0,
  primaryKey: 'key',
  type: 'object',
  properties: {
    key: { type: 'string', maxLength: 32 },
    seq: { type: 'number' },
    coll: { type: 'string' },
    record_id: { type: 'string' },
    op: { type: 'string' },
    base_version: { type: 'number' },
    patch: { type: 'object' },
    hlc: { type: 'string' },
  },
  required: ['key'],
};
// `collection` is a reserved RxDocument property: the outbox field is `coll` here.
const rxEntry = ({ collection, ...rest }) => ({ key: String(rest.seq).padStart(12, '0'), coll: collection, ...rest });
const adapter = {
  name: 'rxdb',
  async open() {
    db = await createRxDatabase({ name: 'bench', storage: getRxStorageDexie(), multiInstance: false });
    await db.addCollections({ notes: { schema: noteSchema }, outbox: { schema: outboxSchema } });
  },
  async writeOne(rec, entry) {
    await Promise.all([
      db.notes.insert(rec),
      db.outbox.insert(rxEntry(entry)),
    ]);
  },
  async seed(recs) {
    const res = await db.notes.bulkInsert(recs);
    if (res.error.length) throw new Error(`rxdb seed: ${res.error.length} errors`);
  },
  readAll() {
    return db.notes.find().exec();
  },
  async count(tag) {
    return db.notes.count({ selector: { id: { $gte: `${tag}-`, $lte: `${tag}-\uffff` } } }).exec();
  },
};
expose(adapter);
coldStartIfAsked(adapter, scriptStart);
