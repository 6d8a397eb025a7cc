// Fault 2b: the user clears the site's data (DevTools protocol Storage.clearDataForOrigin)
// under a running tab. Chromium then closes the tab's IndexedDB connection without a `close`
// event, so the next transaction throws InvalidStateError; the store must reopen, find the
// database is not the replica's any more and re-create it (src/store/reconnect.rs), instead
// of failing every write with a dead connection while the state says `idle`. The scenario is
// fault 2's (storage-wiped.mjs).
import { test } from 'node:test';
import { faultSuite } from './harness.mjs';
import { storageWipedScenario } from './storage-wiped.mjs';

const suite = faultSuite();

test('the user clears the site data under a running tab', async () => {
  await storageWipedScenario(suite, async (context, tab) => {
    const cdp = await context.newCDPSession(tab);
    await cdp.send('Storage.clearDataForOrigin', { origin: suite.server.url, storageTypes: 'indexeddb' });
    await cdp.detach();
  });
});
