// Ferry's IndexedDB commit and bulk read, in plain JS (bundled by wasm-bindgen as a snippet).
//
// Why JS: a commit issues one request per row. Driving each request from Rust costs a
// wasm->JS call, a closure and a promise per request; here every request is issued in one
// synchronous loop and the only thing that crosses back into wasm is the transaction's end.
// The rows themselves are built by `src/store/rows.rs`; this file knows only their keys.
//
// The multi-tab commit contract (see src/store/mod.rs) is kept inside the transaction by
// compare-and-put in the read's `onsuccess` — still within the transaction, nothing awaited:
// - meta: the larger stored `seq`, `hlc` and `dv` (app data version) are kept when the stored
//   row is the same replica's;
// - records: a stored base newer (`bv`) than the one being written is kept.
// And the database is the one the replica was loaded from: every commit first reads the
// database's identity row and aborts with a `StorageLostError` when it is missing or another
// (the database was deleted, evicted or cleared under the running tab, and what is open now
// is a fresh one). Only a re-creation (`newIdentity`) writes the row instead of checking it.

/**
 * Writes one batch in one readwrite transaction and resolves when it has committed.
 *
 * @param {IDBDatabase} db
 * @param {string[]} scope the object stores the batch touches
 * @param {object|undefined} meta the meta row to merge and put
 * @param {string} metaStore
 * @param {string} recordStore
 * @param {Array} records alternating key, row (row `undefined` = delete)
 * @param {boolean} keepNewerBases whether to read each record first and keep a newer stored
 *   base (false only in the leader tab, the one tab that advances bases)
 * @param {Array} others [storeName, [key, row, key, row, ...]] pairs (row `undefined` = delete)
 * @param {string} identity the identity of the database the replica belongs to
 * @param {string|undefined} newIdentity set only when re-creating the database: written
 *   instead of checking `identity`
 * @returns {Promise<void>} rejects with the error that aborted the transaction
 */
export function commitBatch(db, scope, meta, metaStore, recordStore, records, keepNewerBases, others, identity, newIdentity) {
  return new Promise((resolve, reject) => {
    const tx = begin(db, scope, 'readwrite', reject);
    if (!tx) return;
    let lost = false;
    settleWith(db, tx, () => resolve(), reject, () =>
      lost
        ? new DOMException(
            'the database was deleted or replaced since this tab opened it (cleared, evicted or deleted by another tab)',
            'StorageLostError',
          )
        : undefined,
    );
    // Reads whose put is still to be issued; the transaction commits when they are done.
    let reads = 0;
    const readDone = () => {
      reads -= 1;
      if (reads === 0 && !lost && typeof tx.commit === 'function') tx.commit();
    };
    try {
      const identities = tx.objectStore(metaStore);
      if (newIdentity !== undefined) {
        identities.put({ k: IDENTITY_KEY, id: newIdentity });
      } else {
        const read = identities.get(IDENTITY_KEY);
        reads += 1;
        read.onsuccess = () => {
          const stored = read.result;
          if (!stored || stored.id !== identity) {
            lost = true;
            tx.abort();
            return;
          }
          readDone();
        };
      }
      if (meta !== undefined) {
        const store = tx.objectStore(metaStore);
        const read = store.get(meta.k);
        reads += 1;
        read.onsuccess = () => {
          const stored = read.result;
          if (stored && stored.cid !== undefined && stored.cid === meta.cid) {
            if (stored.seq > meta.seq) meta.seq = stored.seq;
            if (stored.hlc > meta.hlc) meta.hlc = stored.hlc;
            // The app data version never goes back: a tab opened before another one migrated
            // the data still holds the older version in memory.
            if (stored.dv > meta.dv) meta.dv = stored.dv;
          }
          store.put(meta);
          readDone();
        };
      }
      if (records.length > 0) {
        const store = tx.objectStore(recordStore);
        for (let i = 0; i < records.length; i += 2) {
          const row = records[i + 1];
          if (row === undefined) {
            store.delete(records[i]);
            continue;
          }
          if (!keepNewerBases) {
            store.put(row);
            continue;
          }
          const read = store.get(records[i]);
          reads += 1;
          read.onsuccess = () => {
            const stored = read.result;
            if (stored && stored.bv > row.bv) {
              row.bv = stored.bv;
              row.b = stored.b;
              // A compact row is its base: with the stored base kept, so are its index keys.
              if (row.s === undefined) {
                if (stored.x === undefined) delete row.x;
                else row.x = stored.x;
              }
            }
            store.put(row);
            readDone();
          };
        }
      }
      for (let s = 0; s < others.length; s += 2) {
        const store = tx.objectStore(others[s]);
        const rows = others[s + 1];
        for (let i = 0; i < rows.length; i += 2) {
          if (rows[i + 1] === undefined) store.delete(rows[i]);
          else store.put(rows[i + 1]);
        }
      }
      if (reads === 0 && typeof tx.commit === 'function') tx.commit();
    } catch (e) {
      // A put that throws synchronously (DataCloneError, a bad key): nothing is written.
      try {
        tx.abort();
      } catch (_) {
        // already finished
      }
      reject(e);
    }
  });
}

/**
 * The `records` argument of `commitBatch` (`[key, row, key, row, ...]`) built from one text:
 * `text` holds every string of every row, cut at `cuts` (UTF-16 offsets, one per piece: the
 * collection, the id, then `b` and `s` as the row has them); `shapes` is `[bv, shape]` per
 * record, shape 0 a delete, 1 a full row, 2 a compact row (no `s`), 3 and 4 the same with the
 * index keys `x` (JSON) as the row's last piece. See BulkRecordRows in
 * src/store/rows.rs.
 */
export function recordRows(text, cuts, shapes) {
  const n = shapes.length / 2;
  const out = new Array(n * 2);
  let at = 0;
  let k = 0;
  const next = () => text.slice(at, (at = cuts[k++]));
  for (let r = 0; r < n; r += 1) {
    const c = next();
    const i = next();
    const shape = shapes[2 * r + 1];
    out[2 * r] = [c, i];
    if (shape === 0) {
      out[2 * r + 1] = undefined;
      continue;
    }
    const row = { c, i, bv: shapes[2 * r], b: next() };
    if (shape === 1 || shape === 3) row.s = next();
    if (shape >= 3) row.x = JSON.parse(next());
    out[2 * r + 1] = row;
  }
  return out;
}

// The schema's object stores and the meta row's key, as src/store/schema.rs and rows.rs name
// them (a browser test checks that they agree): the bulk read below also runs before the
// WebAssembly module is ready (`earlyOpen`), so it cannot take them from Rust.
const STORES = {
  all: ['records', 'outbox', 'meta', 'conflicts', 'dead_letters'],
  meta: 'meta',
  records: 'records',
  outbox: 'outbox',
  conflicts: 'conflicts',
  deadLetters: 'dead_letters',
};
const META_KEY = 'replica';
// The meta store's row naming this database (see `commitBatch`).
const IDENTITY_KEY = 'identity';

/** The names `readAll` uses, for the test that compares them with the schema's. */
export function storeNames() {
  return { ...STORES, metaKey: META_KEY };
}

/**
 * Everything stored, read in one readonly transaction: `{meta, identity, records, outbox,
 * conflicts, deadLetters}` with the raw rows of each store.
 */
export function readAll(db) {
  return readRows(db, (records, out) => {
    records.getAll().onsuccess = (e) => {
      out.records = e.target.result;
    };
  });
}

/**
 * What another tab's commit may have changed, in one readonly transaction: `readAll`'s shape,
 * with `records` holding only the rows of `keys` (`[collection, id]` each) that exist.
 *
 * @param {IDBDatabase} db
 * @param {Array<[string, string]>} keys
 */
export function readPart(db, keys) {
  return readRows(db, (records, out) => {
    out.records = [];
    for (const key of keys) {
      records.get(key).onsuccess = (e) => {
        if (e.target.result !== undefined) out.records.push(e.target.result);
      };
    }
  });
}

/** Reads the meta and identity rows and the pending-work stores whole, and the records as `readRecords` says. */
function readRows(db, readRecords) {
  const stores = STORES;
  return new Promise((resolve, reject) => {
    const tx = begin(db, stores.all, 'readonly', reject);
    if (!tx) return;
    const out = {};
    tx.objectStore(stores.meta).get(META_KEY).onsuccess = (e) => {
      out.meta = e.target.result;
    };
    tx.objectStore(stores.meta).get(IDENTITY_KEY).onsuccess = (e) => {
      out.identity = e.target.result ? e.target.result.id : null;
    };
    readRecords(tx.objectStore(stores.records), out);
    for (const [field, name] of [
      ['outbox', stores.outbox],
      ['conflicts', stores.conflicts],
      ['deadLetters', stores.deadLetters],
    ]) {
      tx.objectStore(name).getAll().onsuccess = (e) => {
        out[field] = e.target.result;
      };
    }
    settleWith(db, tx, () => resolve(out), reject);
  });
}

/**
 * The first steps of `Ferry.open`, started by the package entry before the WebAssembly module
 * is ready, so that fetching and compiling the module overlaps with reading the database:
 * take the leader lock `lockName` if no tab holds it, and if it was free, open the database
 * at its current version and read every row.
 *
 * Resolves to `{release, version, raw}`: `release` gives the lock up (null when another tab
 * holds it or Web Locks are missing), `version` is the database's schema version and `raw`
 * what `readAll` read (null when the database does not exist yet or could not be read).
 * Never rejects: whatever fails here, `Ferry.open` does itself. The connection is closed
 * once read, so it never blocks an upgrade; `Ferry.open` uses the rows only when their
 * version is the one it expects, and holds the lock from then on (see src/client/mod.rs).
 *
 * @param {string} name the database name
 * @param {string} lockName the leader lock's name
 */
export function earlyOpen(name, lockName) {
  const none = { release: null, version: 0, raw: null, channel: null, heard: null };
  const locks = globalThis.navigator && globalThis.navigator.locks;
  if (!globalThis.indexedDB || !locks || typeof locks.request !== 'function') return Promise.resolve(none);
  // The tabs' channel opens BEFORE the read, so every notice of another tab's commit that
  // the read may have missed is heard (kept in `heard` until the engine takes the channel
  // over; see src/client/tabs.rs). The connection is opened while the lock is asked for.
  const tabs = listenEarly(`ferry:${name}`);
  const opening = openExisting(name);
  const lock = new Promise((resolve) => {
    locks
      .request(lockName, { mode: 'exclusive', ifAvailable: true }, (held) => {
        if (!held) {
          resolve(null);
          return undefined;
        }
        // Held until `release` is called: by Ferry.open's leader, or by the entry on failure.
        return new Promise((release) => resolve(release));
      })
      .catch(() => resolve(null));
  });
  return lock.then(async (release) => {
    const db = await opening;
    try {
      if (!release) {
        tabs.close();
        return none;
      }
      const found = { release, version: 0, raw: null, channel: tabs.channel, heard: tabs.heard };
      if (!db) return found;
      try {
        return { ...found, version: db.version, raw: await readAll(db) };
      } catch {
        return found;
      }
    } finally {
      if (db) db.close();
    }
  });
}

/** A BroadcastChannel whose messages are kept in `heard` until someone takes it over. */
function listenEarly(channelName) {
  const heard = [];
  let channel = null;
  try {
    channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(channelName) : null;
  } catch {
    channel = null;
  }
  if (channel) channel.onmessage = (e) => heard.push(e.data);
  return {
    channel,
    heard,
    close() {
      if (channel) channel.close();
    },
  };
}

/** Opens `name` at its current version; null when it does not exist yet (or fails to open). */
function openExisting(name) {
  return new Promise((resolve) => {
    let req;
    try {
      req = indexedDB.open(name);
    } catch {
      resolve(null);
      return;
    }
    // A new database: leave creating it to Ferry.open, which knows the schema.
    req.onupgradeneeded = () => req.transaction.abort();
    req.onsuccess = () => {
      const db = req.result;
      db.onversionchange = () => db.close();
      resolve(db);
    };
    req.onerror = (e) => {
      e.preventDefault();
      resolve(null);
    };
  });
}

/**
 * The record rows as ONE JSON text `[[c, i, b, s], ...]` (`s` null in a compact row), for
 * rows whose `b` and `s` are JSON text (no encryption): wasm then decodes all of them in one pass instead of reading
 * every row's fields across the boundary.
 */
export function recordsAsJson(rows) {
  const parts = new Array(rows.length);
  for (let i = 0; i < rows.length; i += 1) {
    const r = rows[i];
    if (typeof r.b !== 'string' || (r.s !== undefined && typeof r.s !== 'string')) return undefined;
    parts[i] = `[${JSON.stringify(r.c)},${JSON.stringify(r.i)},${r.b},${r.s === undefined ? 'null' : r.s}]`;
  }
  return `[${parts.join(',')}]`;
}

/**
 * The database's identity (see `commitBatch`); when it has none yet and `fresh` is given,
 * stores `fresh` as its identity first. Resolves to the identity, or null.
 *
 * @param {IDBDatabase} db
 * @param {string} metaStore
 * @param {string|undefined} fresh
 */
export function databaseIdentity(db, metaStore, fresh) {
  return new Promise((resolve, reject) => {
    const tx = begin(db, [metaStore], fresh === undefined ? 'readonly' : 'readwrite', reject);
    if (!tx) return;
    let identity = null;
    const store = tx.objectStore(metaStore);
    const read = store.get(IDENTITY_KEY);
    read.onsuccess = () => {
      identity = read.result ? read.result.id : null;
      if (identity === null && fresh !== undefined) {
        store.put({ k: IDENTITY_KEY, id: fresh });
        identity = fresh;
      }
    };
    settleWith(db, tx, () => resolve(identity), reject);
  });
}

/** `db.transaction(stores, mode)`, or null once `reject` was told why it could not start. */
function begin(db, stores, mode, reject) {
  try {
    return db.transaction(stores, mode);
  } catch (e) {
    reject(e);
    return null;
  }
}

/**
 * Settles a transaction's promise exactly once: `done()` when it commits, `reject(error)` when
 * it fails. `why()`, when given and returning an error, names the failure instead of the
 * transaction's own error (a commit that aborted itself on a foreign identity).
 *
 * Why more than `oncomplete`/`onabort`: when Chromium force-closes a connection (the user
 * clears the site's data; DevTools' Storage.clearDataForOrigin), it fires `error` on the
 * transaction's pending requests but does not always fire `abort` on the transaction — in
 * tests/faults/02b the abort never came, and a write awaiting it never settled. A request
 * error that no handler prevents aborts its transaction (none of ours prevents one), so the
 * first such error already means the transaction will not commit: it fails the promise at
 * once. And a connection closed under a transaction (`close` on the database) fails whatever
 * is still pending on it.
 *
 * @param {IDBDatabase} db
 * @param {IDBTransaction} tx
 * @param {() => void} done
 * @param {(e: Error) => void} reject
 * @param {() => (Error|undefined)} [why]
 */
function settleWith(db, tx, done, reject, why) {
  let settled = false;
  const onClose = () =>
    fail(new DOMException('the database connection was closed under the transaction', 'InvalidStateError'));
  const finish = () => {
    settled = true;
    db.removeEventListener('close', onClose);
  };
  const fail = (error) => {
    if (settled) return;
    finish();
    reject((why && why()) || error || tx.error || new DOMException('the transaction was aborted', 'AbortError'));
  };
  tx.oncomplete = () => {
    if (settled) return;
    finish();
    done();
  };
  tx.onabort = () => fail(tx.error);
  // A request's error is `AbortError` when its transaction was aborted for another cause;
  // the transaction's own error (set before any request fails) names that cause, e.g.
  // `QuotaExceededError`.
  tx.onerror = (e) => fail(tx.error || (e.target && e.target.error));
  db.addEventListener('close', onClose);
}

// The meta store's row naming the declared indexes every record row's `x` was built under
// (`ferry_core::query::stored::signature`): the index answers queries only when it is the
// signature of the declarations asking.
const INDEXED_KEY = 'indexed';

/** The stored index signature (null when none), read in its own readonly transaction. */
export function indexSignature(db) {
  return new Promise((resolve, reject) => {
    const tx = begin(db, [STORES.meta], 'readonly', reject);
    if (!tx) return;
    let signature = null;
    tx.objectStore(STORES.meta).get(INDEXED_KEY).onsuccess = (e) => {
      signature = e.target.result ? e.target.result.sig : null;
    };
    settleWith(db, tx, () => resolve(signature), reject);
  });
}

/**
 * Brings every record row's index keys `x` up to `signature`'s declarations: walks the
 * records store in readwrite transactions of `batch` rows (so other tabs' commits interleave),
 * asks `keysOf(row)` for the row's keys (undefined: none) and rewrites only the rows whose
 * keys differ; then stores `signature` (null: removes it, so the index answers nothing).
 * Each row is read and rewritten within one transaction, so a concurrent commit is never
 * overwritten by an older row. Resolves to the number of rows rewritten.
 */
export async function reindexRows(db, signature, keysOf, batch) {
  let after;
  let rewritten = 0;
  for (;;) {
    const step = await new Promise((resolve, reject) => {
      const tx = begin(db, [STORES.records], 'readwrite', reject);
      if (!tx) return;
      let seen = 0;
      let last;
      let done = false;
      const range = after === undefined ? null : IDBKeyRange.lowerBound(after, true);
      const cursor = tx.objectStore(STORES.records).openCursor(range);
      cursor.onsuccess = () => {
        const c = cursor.result;
        if (!c) {
          done = true;
          return;
        }
        const row = c.value;
        const keys = signature === null ? undefined : keysOf(row);
        if (JSON.stringify(row.x) !== JSON.stringify(keys)) {
          if (keys === undefined) delete row.x;
          else row.x = keys;
          c.update(row);
          rewritten += 1;
        }
        last = c.primaryKey;
        seen += 1;
        if (seen < batch) c.continue();
      };
      settleWith(db, tx, () => resolve({ last, done: done || seen < batch }), reject);
    });
    if (step.done) break;
    after = step.last;
  }
  await new Promise((resolve, reject) => {
    const tx = begin(db, [STORES.meta], 'readwrite', reject);
    if (!tx) return;
    const meta = tx.objectStore(STORES.meta);
    if (signature === null) meta.delete(INDEXED_KEY);
    else meta.put({ k: INDEXED_KEY, sig: signature });
    settleWith(db, tx, resolve, reject);
  });
  return rewritten;
}

/**
 * Reads one key range of the records' index keys in order (`desc`: from the top), at most
 * `count` rows, in one readonly transaction. Resolves to `{rows, last, more}`: the rows in
 * index order, the index key of the last one, and whether the range may hold more.
 */
export function readIndexRange(db, lo, loOpen, hi, hiOpen, desc, count) {
  return new Promise((resolve, reject) => {
    const tx = begin(db, [STORES.records], 'readonly', reject);
    if (!tx) return;
    const rows = [];
    let last;
    let more = false;
    // One request for the whole batch where the browser allows it: a cursor costs an
    // event-loop round trip per row, and while the engine decodes its load on the main
    // thread each of those waits behind it.
    let index;
    let range;
    try {
      index = tx.objectStore(STORES.records).index('by_key');
      range = IDBKeyRange.bound(lo, hi, loOpen, hiOpen);
    } catch (e) {
      reject(e);
      return;
    }
    const take = (found, rowOf, keyOf) => {
      more = found.length > count;
      for (let i = 0; i < Math.min(count, found.length); i += 1) {
        rows.push(rowOf(found[i]));
        last = keyOf(found[i]);
      }
    };
    if (typeof index.getAllRecords === 'function') {
      // Rows with their index keys, in either direction (Chromium 141 and later).
      index.getAllRecords({ query: range, count: count + 1, direction: desc ? 'prev' : 'next' }).onsuccess = (e) =>
        take(e.target.result, (r) => r.value, (r) => r.key);
      settleWith(db, tx, () => resolve({ rows, last, more }), reject);
      return;
    }
    if (!desc) {
      // `getAllKeys` on an index gives primary keys: the index key is the row's own entry
      // in this range.
      index.getAll(range, count + 1).onsuccess = (e) =>
        take(e.target.result, (row) => row, (row) => row.x.find((k) => range.includes(k)));
      settleWith(db, tx, () => resolve({ rows, last, more }), reject);
      return;
    }
    // Descending without getAllRecords: a cursor from the top.
    const cursor = index.openCursor(range, 'prev');
    cursor.onsuccess = () => {
      const c = cursor.result;
      if (!c) return;
      if (rows.length === count) {
        more = true;
        return;
      }
      rows.push(c.value);
      last = c.key;
      c.continue();
    };
    settleWith(db, tx, () => resolve({ rows, last, more }), reject);
  });
}

/**
 * Opens the database `name` at its current version for reading first pages, and reads its
 * index signature at once: a readwrite transaction on the meta store (the engine's open
 * issues one) would otherwise hold this read until the engine's whole load is done.
 * Resolves to `{db, signature}`, or null when the database does not exist (or cannot be read).
 */
export async function openForReading(name) {
  const db = await openExisting(name);
  if (!db) return null;
  try {
    return { db, signature: await indexSignature(db) };
  } catch {
    db.close();
    return null;
  }
}
