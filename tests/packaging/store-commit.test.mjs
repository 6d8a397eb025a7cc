// The store's transaction promises (src/store/commit.js, shipped in the package as a
// snippet) settle however the browser ends a transaction. Chromium, when it force-closes a
// connection (the user clears the site's data), fires `error` on the pending requests but not
// always `abort` on the transaction; a write awaiting only `abort` then never settled
// (tests/faults/02b). Driven here with stand-in transaction and database objects, so each
// way of ending is exercised exactly, without a browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commitBatch, databaseIdentity, readAll } from '../../src/store/commit.js';

/** A request whose `onsuccess` the test fires (or never fires). */
class FakeRequest extends EventTarget {
  constructor(tx) {
    super();
    this.transaction = tx;
    this.result = undefined;
    this.error = null;
  }
}

class FakeStore {
  constructor(tx, rows = {}) {
    this.tx = tx;
    this.rows = rows;
  }
  request(result) {
    const r = new FakeRequest(this.tx);
    r.result = result;
    this.tx.requests.push(r);
    return r;
  }
  get(key) {
    return this.request(this.rows[key]);
  }
  getAll() {
    return this.request(Object.values(this.rows));
  }
  put(row) {
    return this.request(undefined);
  }
  delete() {
    return this.request(undefined);
  }
}

class FakeTransaction extends EventTarget {
  constructor(rows) {
    super();
    this.rows = rows;
    this.requests = [];
    this.error = null;
    this.oncomplete = null;
    this.onabort = null;
    this.onerror = null;
  }
  objectStore() {
    return new FakeStore(this, this.rows);
  }
  commit() {}
  abort() {}
  /** Every pending request fails with `error` (bubbling to the transaction), and no `abort` follows. */
  failRequestsWithoutAbort(error) {
    for (const r of this.requests) {
      r.error = error;
      const event = { type: 'error', target: r };
      r.onerror?.(event);
      this.onerror?.(event);
    }
  }
  succeedRequests() {
    for (const r of this.requests) r.onsuccess?.({ target: r });
  }
  complete() {
    this.oncomplete?.({});
  }
}

class FakeDatabase extends EventTarget {
  constructor(rows = { identity: { k: 'identity', id: 'me' } }) {
    super();
    this.rows = rows;
    this.tx = undefined;
  }
  transaction() {
    this.tx = new FakeTransaction(this.rows);
    return this.tx;
  }
  get closeListeners() {
    return this.listeners ?? 0;
  }
  addEventListener(type, fn) {
    if (type === 'close') this.listeners = (this.listeners ?? 0) + 1;
    super.addEventListener(type, fn);
  }
  removeEventListener(type, fn) {
    if (type === 'close') this.listeners -= 1;
    super.removeEventListener(type, fn);
  }
}

const forceClose = () => new DOMException('Connection is closing because of: Force close delete origin', 'UnknownError');
const commit = (db) => commitBatch(db, ['outbox', 'meta'], undefined, 'meta', 'records', [], false, ['outbox', ['e1', { e: 'e1' }]], 'me', undefined);
const settledWithin = (promise, ms = 200) =>
  Promise.race([promise.then(() => 'resolved', (e) => e), new Promise((r) => setTimeout(() => r('pending'), ms))]);

test('a commit whose requests fail without an abort event rejects with their error', async () => {
  const db = new FakeDatabase();
  const done = commit(db);
  db.tx.failRequestsWithoutAbort(forceClose());
  const outcome = await settledWithin(done);
  assert.equal(outcome.name, 'UnknownError', `the commit settled as ${outcome}`);
  assert.equal(db.closeListeners, 0, 'the close listener is removed once settled');
});

test('a bulk read and an identity read whose requests fail without an abort event reject', async () => {
  for (const start of [(db) => readAll(db), (db) => databaseIdentity(db, 'meta', undefined)]) {
    const db = new FakeDatabase();
    const done = start(db);
    db.tx.failRequestsWithoutAbort(forceClose());
    const outcome = await settledWithin(done);
    assert.equal(outcome.name, 'UnknownError', `the read settled as ${outcome}`);
  }
});

test('a connection closed under a pending commit fails it as unavailable', async () => {
  const db = new FakeDatabase();
  const done = commit(db);
  db.dispatchEvent(new Event('close'));
  const outcome = await settledWithin(done);
  assert.equal(outcome.name, 'InvalidStateError', `the commit settled as ${outcome}`);
});

test('a commit that completes resolves once, and a foreign identity still fails as lost', async () => {
  const db = new FakeDatabase();
  const done = commit(db);
  db.tx.succeedRequests();
  db.tx.complete();
  db.dispatchEvent(new Event('close'));
  assert.equal(await settledWithin(done), 'resolved');
  assert.equal(db.closeListeners, 0);

  const foreign = new FakeDatabase({ identity: { k: 'identity', id: 'someone else' } });
  const lost = commit(foreign);
  foreign.tx.abort = () => foreign.tx.onabort?.({});
  foreign.tx.succeedRequests();
  const outcome = await settledWithin(lost);
  assert.equal(outcome.name, 'StorageLostError', `the commit settled as ${outcome}`);
});
