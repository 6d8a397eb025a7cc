// The browser engine (the ferry-sync package) against the real ferry-server, in Chromium:
// leader takeover between tabs, two devices converging through server-sent-event pokes,
// offline -> online, a 401 answered by a token refresh, and a dead letter from the server's
// validation rule that is retried with an edited value.
//
//   node --test tests/engine-e2e/        (npm run test:engine)
//
// Every wait is for an outcome, with a generous limit (harness WAIT_MS); nothing is timed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server,
  ensurePackage,
  ensureServerBinary,
  launchChromium,
  openPage,
  uniqueName,
  until,
  untilServer,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  ensurePackage();
  const bin = ensureServerBinary();
  server = await Server.start(bin);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const put = (page, collection, record) =>
  page.evaluate(([c, r]) => window.ferry.put(c, r).then(() => true), [collection, record]);

test('leader takeover: the surviving tab leads and pushes what the closed tab wrote', async () => {
  const context = await browser.newContext();
  try {
    const name = uniqueName('tabs');
    const first = await openPage(context, server);
    const second = await openPage(context, server);
    await first.evaluate((n) => window.startFerry(n), name);
    await second.evaluate((n) => window.startFerry(n), name);
    const leads = (p) => p.evaluate(() => window.lastState?.isLeader === true);
    await until(first, () => window.lastState?.isLeader === true, null, 'the first tab leads');
    assert.equal(await leads(second), false, 'exactly one tab leads');
    assert.equal(await second.evaluate(() => window.ferry.isLeader), false);

    // Offline, so nothing leaves before the leader is gone.
    await context.setOffline(true);
    const [a, b] = [uniqueName('from-leader'), uniqueName('from-follower')];
    await put(first, 'notes', { id: a, title: 'written by the leader' });
    await put(second, 'notes', { id: b, title: 'written by the follower' });
    await until(second, (id) => window.ferry.get('notes', id) !== undefined, a, 'the follower sees the leader\'s write');
    assert.equal(await leads(second), false);

    await first.close({ runBeforeUnload: false });
    await until(second, () => window.lastState?.isLeader === true, null, 'the other tab takes over');
    await context.setOffline(false);
    await untilServer(
      async () => (await server.record('notes', a)) && (await server.record('notes', b)),
      'both notes — the closed tab\'s too — are on the server',
    );
    assert.equal((await server.record('notes', a)).fields.title, 'written by the leader');
    assert.equal((await server.record('notes', b)).fields.title, 'written by the follower');
    await until(second, () => window.lastState?.outboxDepth === 0, null, 'the outbox empties');
  } finally {
    await context.close();
  }
});

test('a follower tab takes in the leader\'s commits by key, without reading every record again', async () => {
  const context = await browser.newContext();
  // Counts the reads of the records store in each page: whole-store reads (getAll, as a
  // reload does) and reads by key (get, as taking in named records does).
  await context.addInitScript(() => {
    window.recordReads = { all: 0, byKey: 0 };
    const { getAll, get } = IDBObjectStore.prototype;
    IDBObjectStore.prototype.getAll = function (...args) {
      if (this.name === 'records') window.recordReads.all += 1;
      return getAll.apply(this, args);
    };
    IDBObjectStore.prototype.get = function (...args) {
      if (this.name === 'records') window.recordReads.byKey += 1;
      return get.apply(this, args);
    };
  });
  try {
    const name = uniqueName('follow');
    const leader = await openPage(context, server);
    await leader.evaluate((n) => window.startFerry(n, { live: false }), name);
    await until(leader, () => window.lastState?.isLeader === true, null, 'the first tab leads');
    await leader.evaluate(() =>
      Promise.all(Array.from({ length: 200 }, (_, i) => window.ferry.put('notes', { id: `n${i}`, title: `note ${i}` }))),
    );
    // The leader pushes the 200 notes; the commit of the server's answer names every one of
    // them, so it must be behind the marker below, not among the reads counted after it
    // (seen: 154 reads by key when that answer came late).
    await until(leader, () => window.lastState?.outboxDepth === 0 && window.lastState?.status === 'idle', null, 'the leader has pushed the notes');
    const follower = await openPage(context, server);
    await follower.evaluate((n) => window.startFerry(n, { live: false }), name);
    assert.equal(await follower.evaluate(() => window.ferry.isLeader), false);
    // Written after the tabs met: once the follower shows it, every whole reload their first
    // contact asked for is behind it.
    await put(leader, 'notes', { id: 'marker', title: 'the tabs have met' });
    await until(follower, () => window.ferry.get('notes', 'marker') !== undefined, null, 'the follower sees the marker');
    await follower.evaluate(() => { window.recordReads = { all: 0, byKey: 0 }; });

    await put(leader, 'notes', { id: 'n1', title: 'edited by the leader' });
    await leader.evaluate(() => window.ferry.delete('notes', 'n2'));
    await put(leader, 'notes', { id: 'new', title: 'created by the leader' });
    await until(
      follower,
      () => window.ferry.get('notes', 'n1')?.title === 'edited by the leader' &&
        window.ferry.get('notes', 'n2') === undefined &&
        window.ferry.get('notes', 'new')?.title === 'created by the leader',
      null,
      'the follower shows the edit, the delete and the new note',
    );
    const reads = await follower.evaluate(() => window.recordReads);
    assert.equal(reads.all, 0, `the follower read the whole records store ${reads.all} times`);
    assert.ok(reads.byKey >= 3 && reads.byKey < 50, `the follower read ${reads.byKey} records by key`);
    assert.equal(await follower.evaluate(() => window.ferry.get('notes', 'n150')?.title), 'note 150');
  } finally {
    await context.close();
  }
});

/**
 * A context whose pages count whole-store reads of the records store (getAll, as a load or
 * a reload does) in `window.recordReads.all`, and a first tab there that leads and holds
 * `notes` notes `n0`… (`note 0`…).
 */
async function leaderCountingReads(prefix, notes) {
  const context = await browser.newContext();
  await context.addInitScript(() => {
    window.recordReads = { all: 0 };
    const { getAll } = IDBObjectStore.prototype;
    IDBObjectStore.prototype.getAll = function (...args) {
      if (this.name === 'records') window.recordReads.all += 1;
      return getAll.apply(this, args);
    };
  });
  const name = uniqueName(prefix);
  const leader = await openTab(context, name);
  await until(leader, () => window.lastState?.isLeader === true, null, 'the first tab leads');
  await leader.evaluate(
    (count) => Promise.all(Array.from({ length: count }, (_, i) => window.ferry.put('notes', { id: `n${i}`, title: `note ${i}` }))),
    notes,
  );
  return { context, name, leader };
}

/** Another tab of database `name` in `context`, opened without the live stream. */
async function openTab(context, name) {
  const tab = await openPage(context, server);
  await tab.evaluate((n) => window.startFerry(n, { live: false }), name);
  return tab;
}

/** The tab read its records store whole once (its load), and holds the note `id` titled `title`. */
async function assertLoadedOnce(tab, id, title) {
  const reads = await tab.evaluate(() => window.recordReads.all);
  assert.equal(reads, 1, `the joining tab read the whole records store ${reads} times (its load only, expected)`);
  assert.equal(await tab.evaluate((i) => window.ferry.get('notes', i)?.title, id), title);
}

test('a tab that joins does not make the running tab read every record; what each wrote before they met reaches the other', async () => {
  const { context, name, leader } = await leaderCountingReads('join', 200);
  try {
    await leader.evaluate(() => { window.recordReads = { all: 0 }; });

    const joining = await openPage(context, server);
    // Written by the joining tab at once, before the tabs have heard of each other.
    await joining.evaluate(async (n) => {
      await window.startFerry(n, { live: false });
      await window.ferry.put('notes', { id: 'early', title: 'written as the tab joined' });
    }, name);
    assert.equal(await joining.evaluate(() => window.ferry.isLeader), false);
    await until(leader, () => window.ferry.get('notes', 'early')?.title === 'written as the tab joined', null, 'the running tab has the joining tab\'s first write');
    await put(leader, 'notes', { id: 'after', title: 'written after they met' });
    await until(joining, () => window.ferry.get('notes', 'after') !== undefined, null, 'the joining tab sees the running tab\'s write');
    await put(joining, 'notes', { id: 'n7', title: 'edited in the joining tab' });
    await until(leader, () => window.ferry.get('notes', 'n7')?.title === 'edited in the joining tab', null, 'the running tab takes in the edit');

    const reads = await leader.evaluate(() => window.recordReads.all);
    assert.equal(reads, 0, `the running tab read the whole records store ${reads} times because a tab joined`);
    await assertLoadedOnce(joining, 'n150', 'note 150');
  } finally {
    await context.close();
  }
});

test('a tab that joins while another tab keeps writing gets every write by key, reading the store once', async () => {
  const { context, name, leader } = await leaderCountingReads('join-busy', 500);
  try {
    // A second tab, so the leader announces every commit at once (it has a peer) — also
    // while the third tab is still loading.
    const second = await openTab(context, name);
    await put(second, 'notes', { id: 'hi', title: 'from the second tab' });
    await until(leader, () => window.ferry.get('notes', 'hi') !== undefined, null, 'the tabs have met');

    // The leader writes one note after another while the third tab opens.
    await leader.evaluate(() => {
      window.busy = (async () => {
        for (let i = 0; i < 60; i += 1) {
          await window.ferry.put('notes', { id: `busy${i}`, title: `busy ${i}` });
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
    });
    const joining = await openTab(context, name);
    await leader.evaluate(() => window.busy);
    await until(
      joining,
      () => Array.from({ length: 60 }, (_, i) => window.ferry.get('notes', `busy${i}`)).every((n) => n !== undefined),
      null,
      'the joining tab has every write the leader made while it opened',
    );
    await assertLoadedOnce(joining, 'n499', 'note 499');
  } finally {
    await context.close();
  }
});

test('two devices converge through the server; a poke makes B pull without syncNow', async () => {
  const [ctxA, ctxB] = [await browser.newContext(), await browser.newContext()];
  try {
    const name = uniqueName('devices');
    const a = await openPage(ctxA, server);
    const b = await openPage(ctxB, server);
    await a.evaluate((n) => window.startFerry(n, { user: 'alice' }), name);
    await b.evaluate((n) => window.startFerry(n, { user: 'bob' }), name);
    for (const p of [a, b]) {
      await until(p, () => window.lastState?.lastSyncedAt != null, null, 'a first sync');
    }

    const fromA = uniqueName('note-a');
    await put(a, 'notes', { id: fromA, title: 'from device A' });
    // No syncNow on B: the server's poke (or, failing that, polling) brings the change.
    const seen = await until(b, (id) => window.ferry.get('notes', id), fromA, 'device B has A\'s note');
    assert.deepEqual(seen, { id: fromA, title: 'from device A' });

    const fromB = uniqueName('note-b');
    await put(b, 'notes', { id: fromB, title: 'from device B' });
    await until(a, (id) => window.ferry.get('notes', id), fromB, 'device A has B\'s note');

    // Concurrent edits of different fields (merge-fields) settle to the same record on both
    // devices and the server.
    await Promise.all([
      a.evaluate((id) => window.ferry.patch('notes', id, { done: true }), fromA),
      b.evaluate((id) => window.ferry.patch('notes', id, { title: 'renamed on B' }), fromA),
    ]);
    const converged = (p) =>
      until(
        p,
        (id) => {
          const n = window.ferry.get('notes', id);
          return n && n.done === true && n.title === 'renamed on B' && window.lastState.outboxDepth === 0 && n;
        },
        fromA,
        'both edits are merged',
      );
    const [onA, onB] = [await converged(a), await converged(b)];
    assert.deepEqual(onA, onB);
    await untilServer(async () => {
      const r = await server.record('notes', fromA);
      return r && r.fields.done === true && r.fields.title === 'renamed on B';
    }, 'the server holds the merge');
  } finally {
    await ctxA.close();
    await ctxB.close();
  }
});

test('offline -> online: the outbox empties by itself', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server);
    await page.evaluate((n) => window.startFerry(n), uniqueName('offline'));
    await until(page, () => window.lastState?.lastSyncedAt != null, null, 'a first sync');
    await context.setOffline(true);
    const id = uniqueName('note');
    await put(page, 'notes', { id, title: 'written offline' });
    await until(page, () => window.lastState?.status === 'offline', null, 'the engine reports offline');
    assert.equal(await page.evaluate(() => window.lastState.outboxDepth), 1);
    assert.equal(await server.record('notes', id), undefined);

    await context.setOffline(false);
    await until(page, () => window.lastState?.outboxDepth === 0, null, 'the outbox empties');
    assert.equal((await server.record('notes', id)).fields.title, 'written offline');
    await until(page, () => window.lastState?.status === 'idle', null, 'the engine is idle again');
  } finally {
    await context.close();
  }
});

test('a 401 makes the engine ask getToken(true) and the write reaches the server', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server);
    const expired = server.expiredToken('alice');
    await page.evaluate(([n, t]) => window.startFerry(n, { firstToken: t, live: false }), [uniqueName('auth'), expired]);
    const id = uniqueName('note');
    await put(page, 'notes', { id, title: 'after a refresh' });
    await untilServer(() => server.record('notes', id), 'the note reaches the server');
    const calls = await page.evaluate(() => window.tokenCalls);
    assert.equal(calls[0], false, 'the first token was asked without refresh');
    assert.ok(calls.includes(true), `getToken(true) was called after the 401: ${JSON.stringify(calls)}`);
    await until(page, () => window.lastState?.outboxDepth === 0 && window.lastState.status === 'idle', null, 'idle with an empty outbox');
    assert.equal(await page.evaluate(() => window.lastState.lastError), null);
  } finally {
    await context.close();
  }
});

test('a dead letter from the server\'s validation rule, retried with an edited value, lands', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server);
    await page.evaluate((n) => window.startFerry(n), uniqueName('letters'));
    const id = uniqueName('expense');
    await put(page, 'expenses', { id, label: 'taxi', amount: -12 });
    const letter = await until(
      page,
      () => {
        const [l] = window.ferry.deadLetters.getSnapshot();
        return l && { code: l.code, message: l.message, recordId: l.recordId, desired: l.desired };
      },
      null,
      'the refused expense becomes a dead letter',
    );
    assert.equal(letter.code, 'validation_failed');
    assert.equal(letter.recordId, id);
    assert.match(letter.message, /amount/);
    assert.deepEqual(letter.desired, { id, label: 'taxi', amount: -12 });
    assert.equal(await server.record('expenses', id), undefined, 'the server refused it');
    assert.equal(await page.evaluate(() => window.lastState.deadLetters), 1);

    await page.evaluate(() => {
      const [l] = window.ferry.deadLetters.getSnapshot();
      return l.retry({ ...l.desired, amount: 12 });
    });
    const stored = await untilServer(() => server.record('expenses', id), 'the edited expense lands on the server');
    assert.deepEqual(stored.fields, { label: 'taxi', amount: 12 });
    await until(
      page,
      () => window.ferry.deadLetters.getSnapshot().length === 0 && window.lastState.outboxDepth === 0,
      null,
      'no dead letter and an empty outbox',
    );
    assert.deepEqual(await page.evaluate((i) => window.ferry.get('expenses', i), id), { id, label: 'taxi', amount: 12 });
  } finally {
    await context.close();
  }
});

test('a reopen reads the database while the module loads: same records and outbox; other tabs and failed opens keep leadership working', async () => {
  const context = await browser.newContext();
  try {
    const name = uniqueName('early');
    // Pages load while online; then nothing leaves, so the outbox must survive the reopen.
    const [writer, first, second] = [await openPage(context, server), await openPage(context, server), await openPage(context, server)];
    await context.setOffline(true);
    await writer.evaluate((n) => window.startFerry(n), name);
    await put(writer, 'notes', { id: 'e1', title: 'one', n: 1 });
    await put(writer, 'notes', { id: 'e2', title: 'two', n: 2 });
    await writer.evaluate(() => window.ferry.patch('notes', 'e1', { title: 'one, edited' }).then(() => true));
    await writer.evaluate(() => window.ferry.close().then(() => true));
    await writer.close();

    await first.evaluate((n) => window.startFerry(n), name);
    const seen = (p) =>
      p.evaluate(() => ({
        e1: window.ferry.get('notes', 'e1'),
        e2: window.ferry.get('notes', 'e2'),
        metrics: window.ferry.metrics(),
        leads: window.ferry.isLeader,
      }));
    const a = await seen(first);
    assert.equal(a.metrics.loadedEarly, true, 'the lone tab used the early read');
    assert.equal(a.leads, true);
    assert.deepEqual(a.e1, { id: 'e1', title: 'one, edited', n: 1 });
    assert.deepEqual(a.e2, { id: 'e2', title: 'two', n: 2 });
    // The patch was folded into its pending create when it was written (the lone tab leads).
    assert.equal(a.metrics.outboxDepth, 2, 'the two offline creates are still queued');

    // A second tab finds the lock held: it loads the usual way and follows.
    await second.evaluate((n) => window.startFerry(n), name);
    const b = await seen(second);
    assert.equal(b.metrics.loadedEarly, false);
    assert.equal(b.leads, false);
    assert.deepEqual(b.e1, a.e1);
    await put(second, 'notes', { id: 'e3', title: 'from the follower' });
    await until(first, () => window.ferry.get('notes', 'e3') !== undefined, null, 'the leader sees the follower\'s write');

    // An open that fails (bad options) after the early read took the free lock gives it back.
    await first.evaluate(() => window.ferry.close().then(() => true));
    await second.evaluate(() => window.ferry.close().then(() => true));
    await context.setOffline(false);
    const failing = await openPage(context, server);
    const code = await failing.evaluate(
      (n) => window.Ferry.open({ name: n, url: '/v1', collections: 5 }).then(() => 'opened', (e) => e.code),
      name,
    );
    assert.equal(code, 'invalid_options');
    const next = await openPage(context, server);
    await next.evaluate((n) => window.startFerry(n), name);
    await until(next, () => window.lastState?.isLeader === true, null, 'a tab opened after the failed open leads');
    assert.equal(await next.evaluate(() => window.ferry.get('notes', 'e3')?.title), 'from the follower');
  } finally {
    await context.close();
  }
});

test('a first sync pulls every page of a server holding more than one page', async () => {
  const context = await browser.newContext();
  try {
    const tenant = uniqueName('pages');
    const token = server.tenantToken(tenant);
    const n = 2_500; // more than two pages of the engine's 1,000
    await server.seedNotes(token, n);
    for (const live of [true, false]) {
      const page = await openPage(context, server);
      await page.evaluate(([name, live, token]) => window.startFerry(name, { live, token }), [uniqueName('pull'), live, token]);
      await page.evaluate(() => {
        window.ferry.query('notes', {}).subscribe((rows) => {
          window.noteCount = rows.length;
        });
      });
      await until(page, (n) => window.noteCount === n, n, `all ${n} notes arrive (live: ${live})`);
      await until(page, () => window.lastState?.status === 'idle' && window.lastState?.lastSyncedAt != null, null, 'the cycle ends');
      assert.deepEqual(await page.evaluate(() => window.ferry.get('notes', 's-002499')), { id: 's-002499', title: 'Note 2499', n: 2499 });
      assert.equal(await page.evaluate(() => window.lastState.lastError), null);
      await page.close();
    }
  } finally {
    await context.close();
  }
});
