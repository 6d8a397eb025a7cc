// The scenario of faults 2 and 2b (storage wiped under a running tab), shared by both files:
// a tab runs with synced and unsent writes, `wipe` takes its database away (another tab
// deletes it, or the user clears the site's data), and the tab writes again. The tab must not
// take that write into a fresh, partial database: it re-creates the database from its
// replica, so after a reload every acknowledged write is still there (unsent ones too) and
// later reaches the server, and the sync state says what happened (`storageLost`).
import assert from 'node:assert/strict';
import { put, uniqueName, until, untilServer, withFerryTab } from './harness.mjs';

/** Runs the scenario in `suite` (see `faultSuite`); `wipe(context, tab, name)` does the wiping. */
export function storageWipedScenario(suite, wipe) {
  return withFerryTab(suite, 'wiped', undefined, async ({ context, tab, name, server }) => {
    const synced = [];
    for (let i = 0; i < 30; i++) {
      synced.push(uniqueName('synced'));
      await put(tab, 'notes', { id: synced[i], title: `synced ${i}` });
    }
    await until(tab, () => window.lastState?.outboxDepth === 0 && window.lastState?.status === 'idle', null, 'the first notes are synced');
    // Offline for sync only (the page itself must still load after a reload).
    await tab.route('**/v1/sync/**', (route) => route.abort('internetdisconnected'));
    const unsent = [];
    for (let i = 0; i < 5; i++) {
      unsent.push(uniqueName('unsent'));
      await put(tab, 'notes', { id: unsent[i], title: `unsent ${i}` });
    }

    await wipe(context, tab, name);
    const last = uniqueName('after-wipe');
    await put(tab, 'notes', { id: last, title: 'written after the wipe' });
    await until(tab, () => window.lastState?.storageLost != null, null, 'the tab reports the lost storage');

    // A reload reads only the database: everything acknowledged must be in it.
    await tab.reload();
    await tab.waitForFunction(() => window.ready === true);
    await tab.evaluate((n) => window.startFerry(n), name);
    const all = [...synced, ...unsent, last];
    const missing = await tab.evaluate((ids) => ids.filter((id) => window.ferry.get('notes', id) === undefined), all);
    assert.deepEqual(missing, [], 'every acknowledged write survives the wipe and a reload');

    await tab.unroute('**/v1/sync/**');
    await tab.evaluate(() => window.ferry.syncNow());
    await untilServer(async () => {
      const records = await server.records();
      return [...unsent, last].every((id) => records.has(`notes/${id}`));
    }, 'the unsent writes reach the server');
  });
}
