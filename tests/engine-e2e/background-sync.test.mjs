// Sync with the app closed, in Chromium against the real ferry-server:
// - Background Sync: a page registers a module service worker running `ferrySync` from
//   `ferry-sync/sw`, writes while its pushes cannot get through, and closes with the writes
//   pending; the registered tag, fired through the DevTools protocol
//   (`ServiceWorker.dispatchSyncEvent`), makes the worker push them. While the page led, the
//   worker's wake-up pushed nothing (one writer per outbox: the Web Locks leadership).
// - The fallback without Background Sync: the page flushes when hidden, and what still waits
//   when the page is gone goes out on the next open.
//
//   node --test tests/engine-e2e/background-sync.test.mjs      (part of npm run test:engine)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, ensurePackage, ensureServerBinary, launchChromium, openPage, uniqueName, until, untilServer } from './harness.mjs';

const DB = uniqueName('bg');

// The app's service worker: Ferry's flush on the sync tag, and a log of every wake-up and how
// it ended, which a page can ask for with a message.
const SERVICE_WORKER = `
import { ferrySync } from './pkg/sw.js';
const options = {
  name: ${JSON.stringify(DB)},
  url: '/v1',
  collections: { notes: { policy: 'merge-fields' } },
  getToken: async () => {
    const r = await fetch('/v1/demo/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":"alice"}' });
    return (await r.json()).token;
  },
};
const wakeUps = [];
// Short, so a wake-up that meets a leading tab ends (and is logged) while the test watches.
const { tag, flush } = ferrySync({ ...options, flushTimeoutMs: 3000 });
self.addEventListener('sync', (event) => {
  if (event.tag !== tag) return;
  const entry = { at: Date.now(), result: 'running' };
  wakeUps.push(entry);
  // The flush ferrySync's own listener started (concurrent calls share one), observed to log
  // how it ended.
  event.waitUntil(flush().then(
    () => { entry.result = 'flushed'; },
    (e) => { entry.result = 'rejected: ' + e.message; },
  ));
});
self.addEventListener('message', (event) => event.source.postMessage({ wakeUps }));
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
`;

let server;
let browser;

before(async () => {
  ensurePackage();
  const bin = ensureServerBinary();
  server = await Server.start(bin, { files: { 'sw-test.js': SERVICE_WORKER } });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// Opens Ferry in the page with pushes failing as if offline while window.failPushes is set.
const openFerry = (page, name, backgroundSync) =>
  page.evaluate(
    async ([name, backgroundSync]) => {
      window.failPushes = true;
      const r = await fetch('/v1/demo/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":"alice"}' });
      const token = (await r.json()).token;
      window.ferry = await window.Ferry.open({
        name,
        url: '/v1',
        live: false,
        collections: { notes: { policy: 'merge-fields' } },
        getToken: async () => token,
        backgroundSync,
        fetch: (input, init) =>
          window.failPushes && String(input).includes('/sync/mutations')
            ? Promise.reject(new TypeError('Failed to fetch'))
            : fetch(input, init),
      });
      window.ferry.syncState.subscribe((s) => { window.lastState = s; });
      return true;
    },
    [name, backgroundSync],
  );

const put = (page, record) => page.evaluate((r) => window.ferry.put('notes', r).then(() => true), record);

/** The worker's log of wake-ups, asked for from a page it controls. */
const wakeUps = (page) =>
  page.evaluate(
    () =>
      new Promise((resolve) => {
        navigator.serviceWorker.addEventListener('message', (e) => resolve(e.data.wakeUps), { once: true });
        navigator.serviceWorker.controller.postMessage('log');
      }),
  );

test('background sync: the service worker pushes what a closed page left in the outbox', async () => {
  const context = await browser.newContext();
  try {
    const page = await openPage(context, server);
    await page.evaluate(async () => {
      await navigator.serviceWorker.register('/sw-test.js', { type: 'module', scope: '/' });
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) {
        await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
      }
    });
    await openFerry(page, DB, true);
    const ids = [uniqueName('bg-a'), uniqueName('bg-b'), uniqueName('bg-c')];
    for (const id of ids) await put(page, { id, title: `written before closing ${id}` });
    await until(page, () => window.ferry.backgroundSync?.status === 'sync', null, 'the page registered the sync tag');
    assert.equal(await page.evaluate(() => window.ferry.isLeader), true);

    // Online, the browser fires the tag at once: the worker meets the leading page, cannot
    // take the lock, and ends without pushing (the page's own pushes fail here).
    const first = await untilServer(async () => {
      const log = await wakeUps(page);
      return log.length > 0 && log[0].result !== 'running' && log;
    }, 'the first wake-up ended');
    assert.match(first[0].result, /^rejected/, `the worker did not flush while the page led: ${JSON.stringify(first)}`);
    for (const id of ids) assert.equal(await server.record('notes', id), undefined, 'nothing reached the server yet');

    // A page to drive the DevTools protocol from, then close the writer with its writes pending.
    const driver = await openPage(context, server);
    const cdp = await context.newCDPSession(driver);
    const registrations = new Map();
    cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations: list }) => {
      for (const r of list) if (!r.isDeleted) registrations.set(r.scopeURL, r.registrationId);
    });
    await cdp.send('ServiceWorker.enable');
    const registrationId = await untilServer(async () => registrations.get(`${server.url}/`), 'the registration is known');
    assert.equal((await page.evaluate(() => window.ferry.syncState.getSnapshot().outboxDepth)), ids.length);
    await page.close({ runBeforeUnload: false });

    await cdp.send('ServiceWorker.dispatchSyncEvent', { origin: server.url, registrationId, tag: 'ferry-sync', lastChance: false });
    await untilServer(async () => {
      const all = await server.records();
      return ids.every((id) => all.has(`notes/${id}`));
    }, 'the worker pushed the closed page\'s writes');
    for (const id of ids) {
      assert.deepEqual((await server.record('notes', id)).fields, { title: `written before closing ${id}` });
    }
    const log = await untilServer(async () => {
      const l = await wakeUps(driver);
      return l.length >= 2 && l.at(-1).result !== 'running' && l;
    }, 'the dispatched wake-up ended');
    assert.equal(log.at(-1).result, 'flushed', JSON.stringify(log));
  } finally {
    await context.close();
  }
});

test('fallback without Background Sync: flush when hidden, and on the next open', async () => {
  const context = await browser.newContext();
  try {
    // A browser without Background Sync (Firefox, Safari).
    await context.addInitScript(() => {
      delete ServiceWorkerRegistration.prototype.sync;
      delete globalThis.SyncManager;
    });
    const name = uniqueName('fallback');
    const page = await openPage(context, server);
    await openFerry(page, name, true);
    const hidden = uniqueName('hidden');
    await put(page, { id: hidden, title: 'flushed when the page was hidden' });
    await until(page, () => window.ferry.backgroundSync?.status === 'fallback', null, 'the page knows it has only the fallback');
    await until(page, () => window.lastState?.hasPendingWrites && window.lastState.status !== 'syncing', null, 'the push failed');

    // The push can get through again, but nothing tells the engine; hiding the page does.
    await page.evaluate(() => {
      window.failPushes = false;
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await untilServer(async () => server.record('notes', hidden), 'the hidden page flushed');
    assert.ok((await page.evaluate(() => window.ferry.backgroundSync.flushes)) >= 1);

    // Left for good with a write pending: the next open sends it.
    const left = uniqueName('left');
    await page.evaluate(() => { window.failPushes = true; });
    await put(page, { id: left, title: 'sent on the next open' });
    await until(page, () => window.lastState?.hasPendingWrites && window.lastState.status !== 'syncing', null, 'the push failed');
    await page.close({ runBeforeUnload: false });
    assert.equal(await server.record('notes', left), undefined);
    const next = await openPage(context, server);
    await openFerry(next, name, true);
    await next.evaluate(() => { window.failPushes = false; window.ferry.syncNow(); });
    await untilServer(async () => server.record('notes', left), 'the next open sent it');
  } finally {
    await context.close();
  }
});
