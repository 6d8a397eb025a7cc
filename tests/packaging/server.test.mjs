// The package's JS habits against the real ferry-server, in Chromium: a bad or refused token
// shows `auth-required` with a message saying so (never `offline`), `synced` is true only
// when no write waits, and a dead letter's `retry` with a bad edit rejects instead of
// throwing. Uses the engine tests' harness (tests/engine-e2e/harness.mjs): ferry-server
// --demo on a free port serving pkg/ and a test page with `window.startFerry`.
//
//   node --test tests/packaging/server.test.mjs
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
} from '../engine-e2e/harness.mjs';

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

/** Opens Ferry in a fresh context with a fixed token (or the demo tokens); records every state. */
async function start(options) {
  const context = await browser.newContext();
  const page = await openPage(context, server);
  await page.evaluate(async ([name, opts]) => {
    window.FerryError = (await import('./pkg/index.js')).FerryError;
    await window.startFerry(name, opts);
    window.states = [];
    window.ferry.syncState.subscribe((s) => window.states.push(s));
  }, [uniqueName('dx'), options]);
  return { context, page };
}

const putNote = (page, title) =>
  page.evaluate((t) => window.ferry.put('notes', { id: crypto.randomUUID(), title: t }).then(() => true), title);

test('getToken answering with an HTML page: auth-required with a message saying so, never offline; the write is kept', async () => {
  // What a static file server answers for an unknown URL such as /token: the app's page.
  const html = '<!doctype html>\n<html lang="en">\n<head><title>My app</title></head><body></body></html>\n';
  const { context, page } = await start({ token: html, live: false });
  try {
    await putNote(page, 'kept');
    const state = await until(page, () => {
      const s = window.ferry.syncState.getSnapshot();
      return s.status === 'auth-required' && s;
    }, null, 'the state is auth-required');
    assert.match(state.lastError, /not a bearer token/);
    assert.match(state.lastError, /<!doctype html>/);
    assert.equal(state.outboxDepth, 1, 'the write waits in the outbox');
    assert.equal(state.hasPendingWrites, true);
    assert.equal(state.synced, false);
    const statuses = await page.evaluate(() => window.states.map((s) => s.status));
    assert.ok(!statuses.includes('offline'), `never offline: ${statuses.join(', ')}`);
  } finally {
    await context.close();
  }
});

test('a token the server refuses: auth-required with the refusal in lastError, never offline', async () => {
  const { context, page } = await start({ token: 'not-a-token-this-server-signed', live: false });
  try {
    await putNote(page, 'refused');
    const state = await until(page, () => {
      const s = window.ferry.syncState.getSnapshot();
      return s.status === 'auth-required' && s;
    }, null, 'the state is auth-required');
    // The server's typed 401 reaches the app: its code and its message (issue 14).
    assert.equal(state.errorCode, 'token_invalid');
    assert.match(state.lastError, /token_invalid: the token is invalid/);
    assert.equal(state.synced, false);
    const calls = await page.evaluate(() => window.tokenCalls);
    assert.ok(calls.includes(true), `a fresh token was asked for after the 401: ${JSON.stringify(calls)}`);
    const statuses = await page.evaluate(() => window.states.map((s) => s.status));
    assert.ok(!statuses.includes('offline'), `never offline: ${statuses.join(', ')}`);
  } finally {
    await context.close();
  }
});

test('synced is true only once the server has every write; never with writes waiting', async () => {
  const { context, page } = await start({ live: false });
  try {
    for (let i = 0; i < 5; i++) await putNote(page, `note ${i}`);
    await until(page, () => window.ferry.syncState.getSnapshot().synced, null, 'synced');
    const states = await page.evaluate(() => window.states);
    const early = states.filter((s) => s.outboxDepth > 0);
    assert.ok(early.length > 0, 'some state had writes waiting');
    for (const s of states) {
      assert.equal(s.hasPendingWrites, s.outboxDepth > 0 || s.inFlight > 0);
      if (s.synced) assert.ok(s.status === 'idle' && !s.hasPendingWrites && s.lastSyncedAt !== null, JSON.stringify(s));
    }
    const last = await page.evaluate(() => window.ferry.syncState.getSnapshot());
    assert.equal(last.outboxDepth, 0);
  } finally {
    await context.close();
  }
});

test('a dead letter retried with a bad edit rejects (does not throw) and stays', async () => {
  const { context, page } = await start({ live: false });
  try {
    const id = uniqueName('expense');
    await page.evaluate((i) => window.ferry.put('expenses', { id: i, label: 'taxi', amount: -12 }), id);
    await until(page, () => window.ferry.deadLetters.getSnapshot().length === 1, null, 'a dead letter');
    const outcome = await page.evaluate(async () => {
      const [letter] = window.ferry.deadLetters.getSnapshot();
      let promise;
      try {
        promise = letter.retry('not a record');
      } catch (e) {
        return { threw: e.code };
      }
      return promise.then(() => ({ resolved: true }), (e) => ({ rejected: e.code, isFerryError: e instanceof window.FerryError }));
    }).catch((e) => ({ evaluateFailed: String(e) }));
    assert.deepEqual(outcome, { rejected: 'invalid_record', isFerryError: true });
    assert.equal(await page.evaluate(() => window.ferry.deadLetters.getSnapshot().length), 1, 'the letter is still there');
  } finally {
    await context.close();
  }
});

test('inspect() and the devtools panel show the outbox, dead letters, cursor, leader and sync cycles with trace ids', async () => {
  const { context, page } = await start({ live: false });
  try {
    await putNote(page, 'first');
    await until(page, () => window.ferry.syncState.getSnapshot().synced, null, 'synced');
    const synced = await page.evaluate(() => window.ferry.inspect());
    assert.deepEqual(synced.outbox, []);
    assert.ok(synced.cursor > 0, `the cursor moved: ${synced.cursor}`);
    assert.equal(synced.isLeader, true);
    assert.ok(synced.cycles.length >= 1);
    const pushed = synced.cycles.find((c) => c.requests.some((r) => r.method === 'POST' && r.url.endsWith('/sync/mutations')));
    assert.ok(pushed, `a cycle pushed: ${JSON.stringify(synced.cycles)}`);
    assert.match(pushed.traceId, /^[0-9a-f]{32}$/);
    assert.equal(pushed.ok, true);

    const id = uniqueName('expense');
    await page.evaluate((i) => window.ferry.put('expenses', { id: i, label: 'taxi', amount: -12 }), id);
    await until(page, () => window.ferry.inspect().deadLetters.length === 1, null, 'a dead letter');

    // The server is down for pushes: the entry is sent, fails, and waits for a retry.
    await page.route('**/v1/sync/mutations', (route) =>
      route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'down for this test' } }) }),
    );
    await putNote(page, 'waiting');
    await page.evaluate(() => window.ferry.syncNow());
    const waiting = await until(page, () => {
      const [entry] = window.ferry.inspect().outbox;
      return entry && entry.attempts >= 1 && entry.lastError !== null && entry;
    }, null, 'the outbox entry shows a failed attempt');
    assert.equal(waiting.state, 'sent');
    assert.equal(waiting.collection, 'notes');
    assert.ok(waiting.lastError, 'the entry says why it waits');
    const dump = await page.evaluate(() => window.ferry.inspect());
    const lastCycle = dump.cycles[dump.cycles.length - 1];
    assert.equal(lastCycle.ok, false);
    assert.ok(lastCycle.requests.some((r) => r.status === 503), JSON.stringify(lastCycle));

    const panel = await page.evaluate(async () => {
      const { openInspector } = await import('./pkg/devtools.js');
      const element = openInspector(window.ferry);
      const section = (name) => element.shadowRoot.querySelector(`[data-section="${name}"]`).textContent;
      const shown = {
        outbox: section('outbox'),
        letters: section('dead-letters'),
        cycles: section('cycles'),
        cursor: element.shadowRoot.querySelector('[data-field="cursor"]').textContent,
        leader: element.shadowRoot.querySelector('[data-field="leader"]').textContent,
      };
      element.remove();
      return shown;
    });
    assert.ok(panel.outbox.includes(waiting.recordId) && panel.outbox.includes(waiting.lastError), panel.outbox);
    assert.match(panel.letters, /validation_failed/);
    assert.ok(panel.letters.includes(id));
    assert.ok(panel.cycles.includes(pushed.traceId), 'the panel lists the cycle by its trace id');
    assert.equal(panel.cursor, String(dump.cursor));
    assert.equal(panel.leader, 'this tab');
  } finally {
    await context.close();
  }
});

test('inspect() keeps the conflict history: when a conflict appeared, and how this tab resolved it', async () => {
  const a = await start({ live: false, user: 'ann' });
  const b = await start({ live: false, user: 'ben' });
  try {
    const id = uniqueName('expense');
    await a.page.evaluate((i) => window.ferry.put('expenses', { id: i, label: 'hotel', amount: 5 }), id);
    await until(a.page, () => window.ferry.syncState.getSnapshot().synced, null, 'A synced');
    await b.page.evaluate(() => window.ferry.syncNow());
    await until(b.page, (i) => window.ferry.get('expenses', i) !== undefined, id, 'B has the expense');
    await b.context.setOffline(true);
    await b.page.evaluate((i) => window.ferry.patch('expenses', i, { amount: 6 }), id);
    await a.page.evaluate((i) => window.ferry.patch('expenses', i, { amount: 7 }), id);
    await until(a.page, () => window.ferry.syncState.getSnapshot().synced, null, 'A synced its edit');
    await b.context.setOffline(false);
    await b.page.evaluate(() => window.ferry.syncNow());
    await until(b.page, () => window.ferry.conflicts.getSnapshot().length === 1, null, 'B has a conflict');
    const open = await b.page.evaluate(() => window.ferry.inspect().conflictHistory);
    assert.equal(open.length, 1);
    assert.equal(open[0].recordId, id);
    assert.equal(open[0].resolvedAt, null);
    await b.page.evaluate(() => window.ferry.conflicts.getSnapshot()[0].resolve('server'));
    const history = await until(b.page, () => {
      const [h] = window.ferry.inspect().conflictHistory;
      return h && h.resolvedAt !== null && h;
    }, null, 'the conflict is resolved in the history');
    assert.equal(history.resolution, 'server');
    assert.equal(history.conflictId, open[0].conflictId);
  } finally {
    await a.context.close();
    await b.context.close();
  }
});
