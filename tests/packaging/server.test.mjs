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
    assert.match(state.lastError, /refused the credentials/);
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
