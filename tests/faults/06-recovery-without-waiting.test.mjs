// Fault 6: recovery without waiting. After a server outage on a device that stayed online,
// PROTOCOL.md promises that a local write (or a poke, or a visible tab) retries at once; the
// client used to wait for its backoff timer instead (seconds to minutes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { faultSuite, put, uniqueName, until, untilServer, withFerryTab } from './harness.mjs';

const suite = faultSuite();

test('after an outage a local write syncs at once, not when the backoff timer fires', async () => {
  await withFerryTab(suite, 'outage', { live: false }, async ({ tab }) => {
    await put(tab, 'notes', { id: uniqueName('first'), title: 'first' });
    await until(tab, () => window.lastState?.outboxDepth === 0 && window.lastState?.status === 'idle', null, 'synced');

    // The server is down (a process restart behind the proxy: every sync answer is 503)
    // long enough for the backoff to grow.
    await tab.route('**/v1/sync/**', (route) =>
      route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":{"code":"unavailable","message":"down"}}' }),
    );
    for (let i = 0; i < 6; i++) {
      await put(tab, 'notes', { id: uniqueName('during'), title: `during ${i}` });
      await tab.evaluate(() => window.ferry.syncNow());
      await new Promise((r) => setTimeout(r, 300));
    }
    await until(tab, () => window.lastState?.status === 'backoff', null, 'backing off');

    await tab.unroute('**/v1/sync/**');
    const id = uniqueName('after');
    const wroteAt = Date.now();
    const waitMs = (await tab.evaluate(() => window.lastState.nextRetryAt)) - wroteAt;
    await put(tab, 'notes', { id, title: 'after the outage' });
    await untilServer(async () => (await suite.server.records()).has(`notes/${id}`), 'the write reaches the server');
    const took = Date.now() - wroteAt;
    assert.ok(took < 3_000, `a local write retried at once (took ${took} ms; the timer was due in ${waitMs} ms)`);
  });
});
