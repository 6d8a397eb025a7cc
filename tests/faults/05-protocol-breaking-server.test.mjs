// Fault 5: a misbehaving server or proxy. A pull page saying `has_more: true` whose cursor
// does not advance, or HTML instead of JSON, must not make the client spin (it used to pull
// ~265 times a second, forever) nor corrupt the replica: the client backs off with a typed
// `protocol_error` (no raw HTML in `lastError`) and recovers once the server is fixed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { faultSuite, put, uniqueName, until, untilServer, withFerryTab } from './harness.mjs';

const suite = faultSuite();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a stuck cursor and an HTML answer back off with protocol_error and recover', async () => {
  await withFerryTab(suite, 'proxy', { live: false }, async ({ tab }) => {
    const before = uniqueName('before');
    await put(tab, 'notes', { id: before, title: 'synced before the proxy broke' });
    await until(tab, () => window.lastState?.outboxDepth === 0 && window.lastState?.status === 'idle', null, 'synced');

    // The proxy answers every pull with a page that never advances.
    let pulls = 0;
    await tab.route('**/v1/sync/changes**', (route) => {
      pulls += 1;
      const cursor = Number(new URL(route.request().url()).searchParams.get('cursor'));
      route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ changes: [], cursor, has_more: true, remaining: 5 }) });
    });
    await tab.evaluate(() => window.ferry.syncNow());
    // The state passes through `syncing` again at each retry (errorCode kept from the last
    // failure), so wait for the backoff that must follow a protocol_error, not the first sight.
    const stuck = await until(
      tab,
      () => window.lastState?.errorCode === 'protocol_error' && ['backoff', 'error'].includes(window.lastState.status) && window.lastState,
      null,
      'backoff with a protocol_error',
    );
    assert.equal(stuck.errorCode, 'protocol_error');
    const counted = pulls;
    await sleep(2_000);
    // Spinning was ~530 pulls in 2 s. The backoff has full jitter (retry n waits uniformly
    // 0 to 2^(n-1) s), so a few quick retries in a row are legitimate: a run saw 4 in 2 s
    // against the earlier bound of 3. More than 8 would take retries 2 to 9
    // all landing early (retry 9 alone waits up to 256 s).
    assert.ok(pulls - counted <= 8, `no spinning: ${pulls - counted} pulls in 2 s`);

    // HTML instead of JSON (a captive portal, a misrouted proxy).
    await tab.unroute('**/v1/sync/changes**');
    await tab.route('**/v1/sync/changes**', (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><html><body><h1>Welcome to the hotel wifi</h1></body></html>' }),
    );
    await put(tab, 'notes', { id: uniqueName('during'), title: 'written while the proxy misbehaves' });
    await tab.evaluate(() => window.ferry.syncNow());
    const html = await until(tab, () => window.lastState?.errorCode === 'protocol_error' && window.lastState, null, 'a protocol_error for HTML');
    assert.ok(!/<html|<!doctype|<body/i.test(html.lastError || ''), `no raw HTML in lastError: ${html.lastError}`);
    assert.ok(await tab.evaluate((id) => window.ferry.get('notes', id) !== undefined, before), 'the replica is intact');

    // Fixed: the client recovers.
    await tab.unroute('**/v1/sync/changes**');
    const after = uniqueName('after');
    await put(tab, 'notes', { id: after, title: 'after the fix' });
    await tab.evaluate(() => window.ferry.syncNow());
    await until(tab, () => window.lastState?.status === 'idle' && window.lastState?.outboxDepth === 0 && !window.lastState?.lastError, null, 'recovered');
    await untilServer(async () => (await suite.server.records()).has(`notes/${after}`), 'the write reaches the server');
  });
});
