// Fault 7: untrusted values never kill the module. A release build aborts on a panic, which
// takes the whole engine down: a huge array from the app and a huge Retry-After from a proxy
// must end as typed errors or a backoff, with the engine still writing and syncing after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { faultSuite, put, uniqueName, until, untilServer, withFerryTab } from './harness.mjs';

const suite = faultSuite();

test('a huge array and a huge Retry-After leave the engine working', async () => {
  await withFerryTab(suite, 'hostile', { live: false }, async ({ tab, name }) => {
    const errors = [];
    tab.on('pageerror', (e) => errors.push(String(e)));

    // put() reports failure by rejecting (a Promise method never throws).
    const code = await tab.evaluate(async () => {
      try {
        await window.ferry.put('notes', { id: 'big', list: new Array(2 ** 32 - 1) });
        return 'accepted';
      } catch (e) {
        return e.code;
      }
    });
    assert.equal(code, 'invalid_record');

    // A proxy answers every push with 503 and an absurd Retry-After (317 years).
    await tab.route('**/v1/sync/mutations', (route) =>
      route.fulfill({ status: 503, headers: { 'retry-after': '9999999999', 'content-type': 'application/json' }, body: '{"error":{"code":"busy","message":"busy"}}' }),
    );
    const id = uniqueName('after-hostile');
    await put(tab, 'notes', { id, title: 'still works' });
    const state = await until(tab, () => window.lastState?.status === 'backoff' && window.lastState, null, 'the engine backs off');
    assert.ok(Number.isFinite(state.nextRetryAt), `a finite retry time: ${state.nextRetryAt}`);
    assert.ok(state.nextRetryAt - Date.now() <= 10 * 60 * 1000 + 5_000, 'Retry-After is capped at 10 minutes');
    // The engine still takes writes.
    await put(tab, 'notes', { id: `${id}-2`, title: 'still works' });
    assert.equal(await tab.evaluate(() => window.ferry.get('notes', 'big')), undefined);
    assert.deepEqual(errors.filter((e) => /unreachable|RuntimeError|panicked/.test(e)), [], 'no trap in the module');

    // Proxy fixed; the next start of the app syncs what it holds.
    await tab.unroute('**/v1/sync/mutations');
    await tab.reload();
    await tab.waitForFunction(() => window.ready === true);
    await tab.evaluate((n) => window.startFerry(n, { live: false }), name);
    await untilServer(async () => (await suite.server.records()).has(`notes/${id}-2`), 'the writes reach the server');
  });
});
