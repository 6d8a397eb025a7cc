// Raw IndexedDB: the limit. A record store and an outbox store, written in one readwrite
// transaction, durable at `oncomplete`. Variant `onevalue` stores all outbox entries of a
// transaction as ONE value (the DESIGN's observation); `perentry` one value per entry.
// Variant `ferrylike` is a diagnostic, not a limit: it replays the request pattern of Ferry's
// IndexedDB commit (src/store/mod.rs, IdbStore::write) in plain JS — read and write a meta
// row, then for each record read it and write it, then write each outbox entry, awaiting
// every request before issuing the next — to tell that pattern's cost from the engine's.
import { expose, coldStartIfAsked } from './common.js';
import { installTrace } from './idb-trace.js';
import { done, req2p } from './promises.js';

if (new URLSearchParams(location.search).has('trace')) installTrace();

export function rawIdb(variant) {
  const scriptStart = performance.now();
  let db;
  let batchKey = 0;
  const range = (tag) => IDBKeyRange.bound(`${tag}-`, `${tag}-\uffff`);

  async function writeFerryLike(recs, entries) {
    const tx = db.transaction(['records', 'outbox', 'meta'], 'readwrite');
    const ms = tx.objectStore('meta');
    const rs = tx.objectStore('records');
    const os = tx.objectStore('outbox');
    const finished = done(tx);
    const meta = (await req2p(ms.get('meta'))) || { seq: 0 };
    await req2p(ms.put({ ...meta, seq: meta.seq + entries.length }, 'meta'));
    for (const r of recs) {
      await req2p(rs.get(r.id));
      await req2p(rs.put(r));
    }
    for (const e of entries) await req2p(os.put(e, e.seq));
    tx.commit();
    return finished;
  }

  function write(recs, entries) {
    if (variant === 'ferrylike') return writeFerryLike(recs, entries);
    const tx = db.transaction(['records', 'outbox'], 'readwrite');
    const rs = tx.objectStore('records');
    const os = tx.objectStore('outbox');
    for (const r of recs) rs.put(r);
    if (variant === 'onevalue') {
      batchKey += 1;
      os.put(entries, batchKey);
    } else {
      for (const e of entries) os.put(e, e.seq);
    }
    return done(tx);
  }

  const adapter = {
    name: variant === 'perentry' ? 'idb' : `idb-${variant}`,
    async open() {
      const req = indexedDB.open('bench', 1);
      req.onupgradeneeded = () => {
        req.result.createObjectStore('records', { keyPath: 'id' });
        req.result.createObjectStore('outbox');
        req.result.createObjectStore('meta');
      };
      db = await req2p(req);
    },
    writeOne(rec, entry) {
      return write([rec], [entry]);
    },
    writeMany(recs, entries) {
      return write(recs, entries);
    },
    async seed(recs) {
      const tx = db.transaction(['records'], 'readwrite');
      const rs = tx.objectStore('records');
      for (const r of recs) rs.put(r);
      await done(tx);
    },
    async readAll() {
      const tx = db.transaction(['records'], 'readonly');
      return req2p(tx.objectStore('records').getAll());
    },
    async count(tag) {
      const tx = db.transaction(['records'], 'readonly');
      return req2p(tx.objectStore('records').count(range(tag)));
    },
    extra: {
      // 4. the sync limit: fetch the same pages and put each page in one transaction with
      // the cursor; then push `n` queued outbox entries in batches, deleting the acked ones.
      async pullLimit({ base, token, limit }) {
        const t0 = performance.now();
        await adapter.open();
        let cursor = 0;
        let total = 0;
        let pages = 0;
        for (;;) {
          const res = await fetch(`${base}/v1/sync/changes?cursor=${cursor}&limit=${limit}`, {
            headers: { authorization: `Bearer ${token}` },
          });
          if (!res.ok) throw new Error(`pull ${res.status}: ${await res.text()}`);
          const page = await res.json();
          const tx = db.transaction(['records', 'outbox'], 'readwrite');
          const rs = tx.objectStore('records');
          for (const r of page.changes) rs.put({ id: r.id, collection: r.collection, version: r.version, ...r.fields });
          tx.objectStore('outbox').put({ cursor: page.cursor }, 'cursor');
          await done(tx);
          total += page.changes.length;
          pages += 1;
          cursor = page.cursor;
          if (!page.has_more) break;
        }
        return { ms: performance.now() - t0, total, pages };
      },
      async pushLimit({ base, token, n, batch, clientId }) {
        // queue n entries offline (untimed), then drain them like a sync engine would.
        const recs = [];
        const entries = [];
        for (let i = 0; i < n; i++) {
          const id = `pl-${clientId}-${String(i).padStart(6, '0')}`;
          const rec = { id, title: `Note ${i}`, body: 'queued offline', n: i };
          recs.push(rec);
          entries.push({
            seq: i + 1,
            collection: 'notes',
            record_id: id,
            op: 'create',
            base_version: 0,
            patch: { title: rec.title, body: rec.body, n: i },
          });
        }
        {
          const tx = db.transaction(['records', 'outbox'], 'readwrite');
          for (const r of recs) tx.objectStore('records').put(r);
          for (const e of entries) tx.objectStore('outbox').put(e, e.seq);
          await done(tx);
        }
        const t0 = performance.now();
        let sent = 0;
        for (;;) {
          const tx = db.transaction(['outbox'], 'readonly');
          const pending = await req2p(tx.objectStore('outbox').getAll(IDBKeyRange.lowerBound(0), batch));
          if (pending.length === 0) break;
          const hlc = `${String(Date.now()).padStart(15, '0')}-0000000000-${clientId}`;
          const mutations = pending.map((e) => ({
            op_id: `${clientId}.${e.seq}`,
            client_id: clientId,
            seq: e.seq,
            collection: e.collection,
            record_id: e.record_id,
            op: e.op,
            base_version: e.base_version,
            patch: e.patch,
            hlc,
          }));
          const res = await fetch(`${base}/v1/sync/mutations`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${token}`,
              'content-type': 'application/json',
              'idempotency-key': `${clientId}-${pending[0].seq}-${pending.length}`,
            },
            body: JSON.stringify({ client_id: clientId, mutations }),
          });
          if (!res.ok) throw new Error(`push ${res.status}: ${await res.text()}`);
          const ans = await res.json();
          const versions = new Map(ans.accepted.map((a) => [a.op_id, a.version]));
          const wtx = db.transaction(['records', 'outbox'], 'readwrite');
          const rs = wtx.objectStore('records');
          const os = wtx.objectStore('outbox');
          for (const e of pending) {
            os.delete(e.seq);
            rs.put({ id: e.record_id, version: versions.get(`${clientId}.${e.seq}`) ?? 0, ...e.patch });
          }
          await done(wtx);
          sent += pending.length;
        }
        return { ms: performance.now() - t0, sent };
      },
    },
  };
  expose(adapter);
  return coldStartIfAsked(adapter, scriptStart);
}
