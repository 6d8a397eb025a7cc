// Fault 2b: "clear site data" (DevTools protocol Storage.clearDataForOrigin) under a running
// tab. NOT in npm run test:faults: on this branch the scenario did not finish (it waited past
// the harness limit; not yet diagnosed: the browser may close the connection without a
// `close` event, leaving the store on a dead connection that fails with InvalidStateError
// rather than the identity check's StorageLostError). Run it by hand:
//   node --test tests/faults/pending/
// Fault 2: storage wiped under a running tab. Another tab deletes the database, or the user
// clears the site's data, while a tab runs with synced and unsent writes. The tab must not
// take its next write into a fresh, partial database: it re-creates the database from its
// replica, so after a reload every acknowledged write is still there (unsent ones too) and
// later reaches the server, and the sync state says what happened (`storageLost`).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FaultServer, ensurePackage, ensureServerBinary, launchChromium, openPage, put, uniqueName, until, untilServer } from '../harness.mjs';

let server;
let browser;

before(async () => {
  ensurePackage();
  server = await FaultServer.start(ensureServerBinary());
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function scenario(wipe) {
  const context = await browser.newContext();
  try {
    const name = uniqueName('wiped');
    const tab = await openPage(context, server);
    await tab.evaluate((n) => window.startFerry(n), name);
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
  } finally {
    await context.close();
  }
}

test('the user clears the site data under a running tab', async () => {
  await scenario(async (context, tab) => {
    const cdp = await context.newCDPSession(tab);
    await cdp.send('Storage.clearDataForOrigin', { origin: server.url, storageTypes: 'indexeddb' });
    await cdp.detach();
  });
});
