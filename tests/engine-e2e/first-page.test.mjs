// Indexed queries from storage: a query's first page read from the declared indexes' keys that
// every record row carries (`x`, the multi-entry index `by_key`), and
// `Ferry.open({ waitForRecords: false })`, which answers with it while the records load.
//
//   node --test tests/engine-e2e/first-page.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, WAIT_MS, ensurePackage, ensureServerBinary, launchChromium, openPage, uniqueName } from './harness.mjs';

let server;
let browser;

before(async () => {
  ensurePackage();
  server = await Server.start(ensureServerBinary());
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const INDEXES = ['n', ['who', 'n'], ['who', 'done', 'n']];

/** Opens `name` in the page as window.ferry (offline: no token) with `indexes` on `tasks`. */
function open(page, name, indexes, extra = {}) {
  return page.evaluate(
    async ([n, ix, more]) => {
      window.openOptions = {
        name: n,
        url: '/v1',
        live: false,
        getToken: () => null,
        collections: { tasks: { policy: 'last-writer-wins', indexes: ix } },
        ...more,
      };
      window.ferry = await window.Ferry.open(window.openOptions);
      return true;
    },
    [name, indexes, extra],
  );
}

/** Writes `count` tasks of every kind of `n` (numbers, strings, null, missing, booleans), then deletes some. */
function seed(page, count) {
  return page.evaluate(async (count) => {
    const writes = [];
    for (let i = 0; i < count; i += 1) {
      const rec = { id: `t${String(i).padStart(5, '0')}`, who: ['ann', 'bo', 'cy'][i % 3], done: i % 4 === 0, title: `task ${i}` };
      if (i % 17 === 0) rec.n = `s${i % 5}`;
      else if (i % 19 === 0) rec.n = null;
      else if (i % 23 === 0) rec.n = i % 2 === 0;
      else if (i % 29 !== 0) rec.n = (i * 7919) % 1000;
      writes.push(window.ferry.put('tasks', rec));
    }
    await Promise.all(writes);
    const deletes = [];
    for (let i = 0; i < count; i += 31) deletes.push(window.ferry.delete('tasks', `t${String(i).padStart(5, '0')}`));
    await Promise.all(deletes);
    return true;
  }, count);
}

// Ranges, compound indexes, `in`, prefix, descending order and keyset paging.
const QUERIES = [
  { orderBy: 'n', limit: 20 },
  { orderBy: ['n', 'desc'], limit: 15 },
  { where: { who: 'bo' }, orderBy: 'n', limit: 12 },
  { where: { who: { in: ['ann', 'cy'] } }, orderBy: 'n', limit: 25 },
  { where: { n: { gte: 100, lt: 400 } }, orderBy: 'n', limit: 30 },
  { where: { n: { between: [500, 520] } }, orderBy: 'n', limit: 50 },
  { where: { who: 'cy', done: true }, orderBy: 'n', limit: 7 },
  { where: { who: 'ann', n: { gt: 900 } }, orderBy: ['n', 'desc'], limit: 5 },
  { where: { n: { prefix: 's' } }, orderBy: 'n', limit: 10 },
  { where: { who: 'bo', title: { prefix: 'task 1' } }, orderBy: 'n', limit: 8 },
  { orderBy: 'n', limit: 20, after: { id: 't00300', n: 420 } },
  { orderBy: ['n', 'desc'], limit: 20, after: { id: 't00300', n: 420 } },
];

/**
 * Each query's page read from the stored index (undefined: not served) beside the loaded
 * engine's rows; `plainGetAll`: as a browser without `IDBIndex.getAllRecords` reads it.
 */
function pagesBesideEngine(page, queries, plainGetAll = false) {
  return page.evaluate(async ([queries, plainGetAll]) => {
    const getAllRecords = Object.getOwnPropertyDescriptor(IDBIndex.prototype, 'getAllRecords');
    if (plainGetAll && getAllRecords) delete IDBIndex.prototype.getAllRecords;
    const { Ferry: Engine } = await import('/pkg/ferry.js');
    const readSignature = (db) =>
      new Promise((resolve) => {
        const req = db.transaction('meta').objectStore('meta').get('indexed');
        req.onsuccess = () => resolve(req.result ? req.result.sig : null);
      });
    const db = await new Promise((resolve, reject) => {
      const req = indexedDB.open(window.openOptions.name);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const out = [];
    for (const q of queries) {
      const plan = Engine.planFirstPage(window.openOptions, 'tasks', q);
      const stored = plan ? await plan.read(db, await readSignature(db)) : undefined;
      const engine = window.ferry.query('tasks', q).getSnapshot();
      out.push({ q, stored, engine });
    }
    db.close();
    if (plainGetAll && getAllRecords) Object.defineProperty(IDBIndex.prototype, 'getAllRecords', getAllRecords);
    return out;
  }, [queries, plainGetAll]);
}

/** The stored index signature (null: none). */
const storedSignature = (page) =>
  page.evaluate(async () => {
    const db = await new Promise((resolve) => {
      const req = indexedDB.open(window.openOptions.name);
      req.onsuccess = () => resolve(req.result);
    });
    const sig = await new Promise((resolve) => {
      const req = db.transaction('meta').objectStore('meta').get('indexed');
      req.onsuccess = () => resolve(req.result ? req.result.sig : null);
    });
    db.close();
    return sig;
  });

/** The signature once the leader's re-indexing stored one other than `not`. */
async function signatureStored(page, not = null) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const sig = await storedSignature(page);
    if (sig !== null && sig !== not) return sig;
    if (Date.now() > deadline) throw new Error(`gave up waiting for an index signature other than ${not}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a page read from the stored index keys is the page the loaded engine answers', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server);
    await open(page, uniqueName('first-page'), INDEXES);
    await seed(page, 600);
    await signatureStored(page);
    for (const plainGetAll of [false, true]) {
      const results = await pagesBesideEngine(page, QUERIES, plainGetAll);
      let served = 0;
      for (const { q, stored, engine } of results) {
        if (stored === undefined) continue;
        served += 1;
        assert.ok(engine.length > 0, `${JSON.stringify(q)} returns rows`);
        assert.deepEqual(stored, engine, `${JSON.stringify(q)} (plain getAll: ${plainGetAll})`);
      }
      assert.equal(served, QUERIES.length, 'every query above has an index yielding its order');
    }
    // A query no index yields in order, or without a limit, is not read from the index.
    const unserved = await pagesBesideEngine(page, [{ orderBy: 'title', limit: 5 }, { orderBy: 'n' }]);
    assert.deepEqual(unserved.map((r) => r.stored), [undefined, undefined]);
  } finally {
    await context.close();
  }
});

test('rows written before an index was declared are re-indexed, and a dropped index leaves no keys behind', async () => {
  const context = await browser.newContext();
  try {
    const name = uniqueName('reindex');
    const page = await openPage(context, server);
    await open(page, name, []);
    await seed(page, 200);
    const before = await signatureStored(page);
    await page.evaluate(() => window.ferry.close());
    const again = await openPage(context, server);
    await open(again, name, INDEXES);
    await signatureStored(again, before);
    const results = await pagesBesideEngine(again, QUERIES);
    for (const { q, stored, engine } of results) assert.deepEqual(stored, engine, JSON.stringify(q));
    // Dropping every index: the rows lose their keys, and the signature says so.
    await again.evaluate(() => window.ferry.close());
    const third = await openPage(context, server);
    await open(third, name, ['title']);
    const answersAfterReindexing = () =>
      third.evaluate(async () => {
        const { Ferry: Engine } = await import('/pkg/ferry.js');
        const db = await new Promise((resolve) => {
          const req = indexedDB.open(window.openOptions.name);
          req.onsuccess = () => resolve(req.result);
        });
        const q = { orderBy: 'title', limit: 3 };
        const sig = await new Promise((resolve) => {
          const req = db.transaction('meta').objectStore('meta').get('indexed');
          req.onsuccess = () => resolve(req.result ? req.result.sig : null);
        });
        const rows = await Engine.planFirstPage(window.openOptions, 'tasks', q).read(db, sig);
        db.close();
        return JSON.stringify(rows) === JSON.stringify(window.ferry.query('tasks', q).getSnapshot());
      });
    await signatureStored(third, await storedSignature(again));
    assert.equal(await answersAfterReindexing(), true, 'the new index answers after re-indexing');
    const keys = await third.evaluate(
      () =>
        new Promise((resolve) => {
          const req = indexedDB.open(window.openOptions.name);
          req.onsuccess = () => {
            const all = req.result.transaction('records').objectStore('records').getAll();
            all.onsuccess = () => resolve(all.result.map((r) => (r.x ? r.x.length : 0)));
          };
        }),
    );
    assert.ok(keys.every((k) => k === 1 || k === 0), 'every row carries one key (its title index) or none (deleted)');
  } finally {
    await context.close();
  }
});

test('waitForRecords: false answers queries from the index while the records load: get throws loading, writes wait, then the engine follows', async () => {
  const context = await browser.newContext();
  try {
    const name = uniqueName('wait-for-records');
    const page = await openPage(context, server);
    await open(page, name, INDEXES);
    await seed(page, 3000);
    await signatureStored(page);
    await page.evaluate(() => window.ferry.close());

    const later = await openPage(context, server);
    const seen = await later.evaluate(
      async ([n, ix, queries]) => {
        let loaded = false;
        const ferry = await window.Ferry.open({
          name: n,
          url: '/v1',
          live: false,
          getToken: () => null,
          collections: { tasks: { policy: 'last-writer-wins', indexes: ix } },
          waitForRecords: false,
        });
        window.ferry = ferry;
        ferry.loaded.then(() => (loaded = true));
        const status = ferry.syncState.getSnapshot().status;
        let getError = null;
        try {
          ferry.get('tasks', 't00001');
        } catch (e) {
          getError = e.code;
        }
        const written = ferry.put('tasks', { id: 'new', who: 'ann', n: -5, title: 'written while loading' });
        const firsts = await Promise.all(
          queries.map(
            (q) =>
              new Promise((resolve) => {
                const stop = ferry.query('tasks', q).subscribe((rows) => {
                  resolve({ rows, beforeLoad: !loaded });
                  queueMicrotask(() => stop());
                });
              }),
          ),
        );
        await ferry.loaded;
        await written;
        const after = queries.map((q) => ferry.query('tasks', q).getSnapshot());
        return { status, getError, firsts, after, leader: ferry.isLeader, newRow: ferry.get('tasks', 'new') };
      },
      [name, INDEXES, QUERIES],
    );
    assert.equal(seen.status, 'loading');
    assert.equal(seen.getError, 'loading');
    assert.deepEqual(seen.firsts.map((f) => f.beforeLoad), QUERIES.map(() => true), 'every first page came before the records were loaded');
    assert.equal(seen.leader, true);
    assert.equal(seen.newRow.title, 'written while loading');
    // The first pages are what was stored; after the load the engine's rows also hold the
    // write made while loading (it sorts first wherever it matches).
    for (let i = 0; i < QUERIES.length; i += 1) {
      const first = seen.firsts[i].rows;
      const withoutNew = seen.after[i].filter((r) => r.id !== 'new');
      assert.ok(first.length > 0, JSON.stringify(QUERIES[i]));
      if (withoutNew.length === seen.after[i].length) assert.deepEqual(first, seen.after[i], JSON.stringify(QUERIES[i]));
      else assert.deepEqual(first.slice(0, withoutNew.length), withoutNew, JSON.stringify(QUERIES[i]));
    }
  } finally {
    await context.close();
  }
});

test('an encrypted database stores no index keys and no signature, and its queries wait for the records', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server);
    await page.evaluate(() => {
      window.key = new Uint8Array(32).fill(7);
    });
    await page.evaluate(async (name) => {
      window.openOptions = {
        name,
        url: '/v1',
        live: false,
        getToken: () => null,
        encryptionKey: window.key,
        collections: { tasks: { policy: 'last-writer-wins', indexes: ['n'] } },
      };
      window.ferry = await window.Ferry.open(window.openOptions);
    }, uniqueName('sealed'));
    await seed(page, 40);
    const seen = await page.evaluate(async () => {
      const { Ferry: Engine } = await import('/pkg/ferry.js');
      const db = await new Promise((resolve) => {
        const req = indexedDB.open(window.openOptions.name);
        req.onsuccess = () => resolve(req.result);
      });
      const rows = await new Promise((resolve) => {
        const req = db.transaction('records').objectStore('records').getAll();
        req.onsuccess = () => resolve(req.result);
      });
      db.close();
      return {
        rows: rows.length,
        withKeys: rows.filter((r) => r.x !== undefined).length,
        plan: Engine.planFirstPage(window.openOptions, 'tasks', { orderBy: 'n', limit: 5 }) ?? null,
      };
    });
    assert.ok(seen.rows > 0);
    assert.equal(seen.withKeys, 0, 'no row holds index keys (they would hold field values in clear)');
    assert.equal(seen.plan, null, 'no first page is planned from an index');
    assert.equal(await storedSignature(page), null);
  } finally {
    await context.close();
  }
});

test('waitForRecords: false with an engine that cannot open: loaded and writes reject with its reason, close resolves; bad options reject open', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server);
    const seen = await page.evaluate(async (name) => {
      // A key of the wrong length passes the options check but fails the engine's open.
      const ferry = await window.Ferry.open({
        name,
        url: '/v1',
        live: false,
        getToken: () => null,
        encryptionKey: new Uint8Array(5),
        collections: { tasks: { indexes: ['n'] } },
        waitForRecords: false,
      });
      const reason = (p) => p.then(() => null, (e) => ({ code: e.code, ferry: e.name === 'FerryError' }));
      const loaded = await reason(ferry.loaded);
      const put = await reason(ferry.put('tasks', { id: 'a', n: 1 }));
      const closed = await ferry.close().then(() => 'resolved', (e) => `rejected: ${e.code}`);
      // Options the engine would refuse are refused by `open` itself, before it resolves.
      const badOptions = await reason(window.Ferry.open({ name, url: '/v1', collections: {}, waitForRecords: false }));
      return { loaded, put, closed, badOptions };
    }, uniqueName('cannot-open'));
    assert.ok(seen.loaded && seen.loaded.ferry, `loaded rejects with a FerryError: ${JSON.stringify(seen.loaded)}`);
    assert.deepEqual(seen.put, seen.loaded, 'a write made meanwhile rejects with the same reason');
    assert.equal(seen.closed, 'resolved');
    assert.deepEqual(seen.badOptions, { code: 'invalid_options', ferry: true });
  } finally {
    await context.close();
  }
});
