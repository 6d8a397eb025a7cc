// Fault 2c: writes racing a clear of the site's data (Storage.clearDataForOrigin), started a
// few milliseconds apart in each round. While Chromium clears the origin it also aborts the
// opens issued meanwhile (`AbortError: The connection was closed`); the store used to take
// that as a lasting failure, so the write that triggered the reopen was rolled back (seen in
// CI as fault 2b's write after the wipe failing). Every write must resolve, and every one
// must still be there after a reload: the store re-creates the database from the replica.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { faultSuite, put, uniqueName, withFerryTab } from './harness.mjs';

const suite = faultSuite();
const ROUNDS = 8;
const WRITES = 30;

test('writes racing a clear of the site data all succeed and survive a reload', async () => {
  for (let round = 0; round < ROUNDS; round++) {
    await withFerryTab(suite, 'race', undefined, async ({ context, tab, name }) => {
      for (let i = 0; i < 10; i++) await put(tab, 'notes', { id: uniqueName('before'), title: `before ${i}` });
      // Sync stays offline: the database is the only copy that counts here.
      await tab.route('**/v1/sync/**', (route) => route.abort('internetdisconnected'));
      const prefix = uniqueName(`round${round}`);
      const cdp = await context.newCDPSession(tab);
      const writes = tab.evaluate(
        async ([prefix, delay, count]) => {
          await new Promise((resolve) => setTimeout(resolve, delay));
          const failures = [];
          for (let i = 0; i < count; i++) {
            await window.ferry.put('notes', { id: `${prefix}-${i}`, title: `${i}` }).catch((e) => failures.push(`${i}: ${e.message}`));
          }
          return failures;
        },
        [prefix, round * 3, WRITES],
      );
      await cdp.send('Storage.clearDataForOrigin', { origin: suite.server.url, storageTypes: 'indexeddb' });
      await cdp.detach();
      assert.deepEqual(await writes, [], `round ${round}: every write racing the clear resolves`);

      await tab.reload();
      await tab.waitForFunction(() => window.ready === true);
      await tab.evaluate((n) => window.startFerry(n), name);
      const missing = await tab.evaluate(
        ([prefix, count]) => Array.from({ length: count }, (_, i) => `${prefix}-${i}`).filter((id) => window.ferry.get('notes', id) === undefined),
        [prefix, WRITES],
      );
      assert.deepEqual(missing, [], `round ${round}: every write is still there after a reload`);
    });
  }
});
