// End-to-end tests of the sample app (Ferry Field) against the reference server.
//
//   npm run test:e2e        (builds the app and the server first; see prepare.mjs)
//
// Two browser contexts are two devices of two users of the demo tenant. They go offline,
// edit the same note, task and expense, come back, and must converge — in both pages and on
// the server. Screenshots of the main states go to tests/e2e/screenshots/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, openDevice, syncSettled, syncState, eventually, screenshot, showView,
  localRecord, appReady, sleep,
} from './harness.mjs';

const T = { timeout: 180_000 };

describe('Ferry Field, end to end', { concurrency: false }, () => {
  let server;
  let browser;
  let alice;
  let bob;
  const ids = {};

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    for (const d of [alice, bob]) {
      if (d && d.errors.length) console.log(`page errors on ${d.user}'s device:\n  ${d.errors.join('\n  ')}`);
    }
    await browser?.close();
    await server?.stop();
  });

  it('two people sign in on two devices and see each other\'s records', T, async () => {
    alice = await openDevice(browser, server.url, 'alice');
    bob = await openDevice(browser, server.url, 'bob');
    assert.equal(await alice.page.getByTestId('user-name').textContent(), 'alice');

    const a = alice.page;
    // A note, a task and an expense, typed into the forms.
    await a.getByTestId('note-title').fill('Pump station visit');
    await a.getByTestId('note-body').fill('Initial reading 3.1 bar.');
    await a.getByTestId('note-add').click();
    const noteCard = a.getByTestId('note-card').filter({ hasText: 'Pump station visit' });
    await noteCard.waitFor();
    ids.note = await noteCard.getAttribute('data-id');

    await showView(a, 'tasks');
    await a.getByTestId('task-title').fill('Replace the gate sensor');
    await a.getByTestId('task-assignee').fill('bob');
    await a.getByTestId('task-add').click();
    const task = a.getByTestId('task-item').filter({ hasText: 'Replace the gate sensor' });
    await task.waitFor();
    ids.task = await task.getAttribute('data-id');

    await showView(a, 'expenses');
    await a.getByTestId('expense-description').fill('Hotel Lyon');
    await a.getByTestId('expense-amount').fill('120');
    await a.getByTestId('expense-category').selectOption('Lodging');
    await a.getByTestId('expense-add').click();
    const expense = a.getByTestId('expense-row').filter({ hasText: 'Hotel Lyon' });
    await expense.waitFor();
    ids.expense = await expense.getAttribute('data-id');

    await syncSettled(a);
    await syncSettled(bob.page);
    const b = bob.page;
    await b.getByTestId('note-card').filter({ hasText: 'Pump station visit' }).waitFor();
    await showView(b, 'tasks');
    await b.getByTestId('task-item').filter({ hasText: 'Replace the gate sensor' }).waitFor();
    await showView(b, 'expenses');
    await b.getByTestId('expense-row').filter({ hasText: 'Hotel Lyon' }).waitFor();
    await showView(b, 'notes');

    await eventually(async () => assert.equal(await a.getByTestId('sync-badge').getAttribute('data-status'), 'synced'));
    assert.equal(await a.getByTestId('outbox-depth').textContent(), '0');
    await showView(a, 'notes');
    await screenshot(a, '01-synced');

    const onServer = await server.records();
    assert.equal(onServer.get(`notes/${ids.note}`).fields.title, 'Pump station visit');
    assert.equal(onServer.get(`expenses/${ids.expense}`).fields.amount, 120);
  });

  it('offline edits of the same records on both devices converge (merge, last writer wins, review)', T, async () => {
    const a = alice.page;
    const b = bob.page;

    // Alice uses the app's Offline switch; Bob's device loses the network for real.
    await offlineSwitch(a, true);
    await bob.context.setOffline(true);
    for (const p of [a, b]) {
      await eventually(async () => assert.equal(await p.getByTestId('sync-badge').getAttribute('data-status'), 'offline'));
    }

    // The same note: Alice changes the title, Bob the text.
    await editNote(a, ids.note, { title: 'Pump station visit — valve replaced' });
    await editNote(b, ids.note, { body: 'Pressure 4.2 bar after the repair.' });

    // The same expense: both change the amount; Bob also the description.
    await editExpense(a, ids.expense, { amount: '135' });
    await editExpense(b, ids.expense, { amount: '150', description: 'Hotel Lyon (2 nights)' });

    // The same task: Alice renames it, then Bob renames it later (the later write wins).
    await editTask(a, ids.task, { title: 'Replace the gate sensor (ordered)' });
    await sleep(30);
    await editTask(b, ids.task, { title: 'Replace the gate sensor (fitted)' });

    for (const p of [a, b]) {
      assert.equal(await p.getByTestId('outbox-depth').textContent(), '3');
      assert.match(await p.getByTestId('sync-badge').textContent(), /Offline/);
    }
    await showView(a, 'notes');
    await screenshot(a, '02-offline-with-queue');

    // Alice comes back first; then Bob.
    await offlineSwitch(a, false);
    await syncSettled(a);
    await bob.context.setOffline(false);
    await syncSettled(b);

    // Bob's note: his text merged with Alice's title, with a banner saying so.
    await showView(b, 'notes');
    const bobNote = b.locator(`[data-testid="note-card"][data-id="${ids.note}"]`);
    await bobNote.getByTestId('merge-banner').waitFor({ state: 'visible' });
    assert.equal(await bobNote.getByTestId('note-card-title').textContent(), 'Pump station visit — valve replaced');
    assert.equal(await bobNote.getByTestId('note-card-body').textContent(), 'Pressure 4.2 bar after the repair.');
    await screenshot(b, '03-merged-note');

    // Bob's expense clashed with Alice's: it waits in his inbox, showing the server's state.
    await eventually(async () => assert.equal(await b.getByTestId('inbox-count').textContent(), '1'));
    await showView(b, 'expenses');
    await b.locator(`[data-testid="expense-row"][data-id="${ids.expense}"]`).getByTestId('expense-needs-review').waitFor();
    await showView(b, 'inbox');
    const card = b.locator(`[data-testid="conflict-card"][data-record-id="${ids.expense}"]`);
    await card.waitFor();
    assert.equal(await card.getByTestId('conflict-base-amount').textContent(), '120');
    assert.equal(await card.getByTestId('conflict-local-amount').textContent(), '150');
    assert.equal(await card.getByTestId('conflict-server-amount').textContent(), '135');
    assert.equal(await card.getByTestId('conflict-local-description').textContent(), 'Hotel Lyon (2 nights)');
    assert.equal(await card.getByTestId('conflict-server-description').textContent(), 'Hotel Lyon');
    await screenshot(b, '04-conflict-inbox');

    // Bob keeps his description and takes Alice's amount, field by field.
    await card.getByTestId('pick-description-local').check();
    await card.getByTestId('pick-amount-server').check();
    await card.getByTestId('resolve-merged').click();
    await card.waitFor({ state: 'detached' });
    const history = b.getByTestId('history-item').first();
    assert.equal(await history.getAttribute('data-choice'), 'merged');
    assert.match(await history.textContent(), /Hotel Lyon \(2 nights\)/);
    assert.deepEqual(await b.evaluate(() => JSON.parse(localStorage.getItem('ferry-field.history.bob')).map((e) => e.choice)), ['merged']);
    await screenshot(b, '05-conflict-resolved');

    await syncSettled(b);
    await syncSettled(a);
    await syncSettled(b);

    // Alice's task edit lost to Bob's later one: she is told.
    await showView(a, 'tasks');
    await a.locator(`[data-testid="task-item"][data-id="${ids.task}"]`).getByTestId('lww-notice').waitFor({ state: 'visible' });
    await screenshot(a, '06-last-writer-wins-notice');

    // Both devices and the server agree.
    const want = {
      note: { title: 'Pump station visit — valve replaced', body: 'Pressure 4.2 bar after the repair.' },
      task: { title: 'Replace the gate sensor (fitted)' },
      expense: { description: 'Hotel Lyon (2 nights)', amount: 135 },
    };
    const onServer = await server.records();
    const serverOf = (c, id) => onServer.get(`${c}/${id}`).fields;
    for (const [kind, collection] of [['note', 'notes'], ['task', 'tasks'], ['expense', 'expenses']]) {
      const s = serverOf(collection, ids[kind]);
      for (const [f, v] of Object.entries(want[kind])) assert.deepEqual(s[f], v, `server ${kind}.${f}`);
      for (const p of [a, b]) {
        await eventually(async () => {
          const local = await localRecord(p, collection, ids[kind]);
          const { id: _id, ...fields } = local;
          assert.deepEqual(fields, s, `${kind} on a device equals the server's`);
        });
      }
    }
    // And the pages show it.
    for (const p of [a, b]) {
      await showView(p, 'expenses');
      const row = p.locator(`[data-testid="expense-row"][data-id="${ids.expense}"]`);
      await eventually(async () => assert.equal(await row.getByTestId('expense-row-description').textContent(), 'Hotel Lyon (2 nights)'));
      assert.match(await row.getByTestId('expense-row-amount').textContent(), /135/);
      await showView(p, 'tasks');
      await eventually(async () => assert.equal(
        await p.locator(`[data-testid="task-item"][data-id="${ids.task}"]`).getByTestId('task-item-title').textContent(),
        'Replace the gate sensor (fitted)'));
      assert.equal(await p.getByTestId('inbox-count').textContent(), '');
    }
  });

  it('a reload in the middle of a sync loses nothing', T, async () => {
    const a = alice.page;
    await offlineSwitch(a, true);
    const created = await a.evaluate(async () => {
      const ids = [];
      const writes = [];
      for (let i = 1; i <= 25; i++) {
        const id = `reload-${i}-${crypto.randomUUID()}`;
        ids.push(id);
        writes.push(window.ferry.put('tasks', { id, title: `Check hydrant ${i}`, done: false, assignee: '', createdAt: Date.now() + i }));
      }
      await Promise.all(writes);
      return ids;
    });
    assert.equal(await a.getByTestId('outbox-depth').textContent(), '25');

    // Hold the push on the wire, go online, and reload while it is in flight.
    let held = 0;
    await alice.context.route('**/v1/sync/mutations', async (route) => {
      held++;
      await sleep(1500);
      try {
        await route.continue();
      } catch { /* the page went away */ }
    });
    const pushed = a.waitForRequest((r) => r.url().includes('/v1/sync/mutations'));
    await offlineSwitch(a, false);
    await pushed;
    await a.reload();
    await appReady(a);
    await alice.context.unroute('**/v1/sync/mutations');
    assert.ok(held >= 1);

    await syncSettled(a);
    const onServer = await server.records();
    for (const id of created) assert.ok(onServer.has(`tasks/${id}`), `task ${id} reached the server`);
    const titles = [...onServer.values()].filter((r) => r.collection === 'tasks' && r.fields.title?.startsWith('Check hydrant'));
    assert.equal(titles.length, 25, 'each task exactly once');

    await syncSettled(bob.page);
    await showView(bob.page, 'tasks');
    await eventually(async () => assert.equal(
      await bob.page.getByTestId('task-item').filter({ hasText: 'Check hydrant' }).count(), 25));
  });

  it('bad input is caught in the form; a refused expense becomes a dead letter that can be fixed', T, async () => {
    const a = alice.page;
    await showView(a, 'expenses');
    const rowsBefore = await a.getByTestId('expense-row').count();

    // The form refuses a negative amount and an empty description itself.
    await a.getByTestId('expense-description').fill('');
    await a.getByTestId('expense-amount').fill('-18');
    await a.getByTestId('expense-add').click();
    await a.getByText('The amount cannot be negative', { exact: false }).first().waitFor();
    await a.getByText('Say what the expense was for.').waitFor();
    assert.equal(await a.getByTestId('expense-row').count(), rowsBefore);
    // Typing clears the messages.
    await a.getByTestId('expense-amount').fill('');
    await a.getByTestId('expense-description').fill('T');
    await a.getByTestId('expense-description').fill('');
    assert.equal(await a.locator('#view-expenses .field-error:not([hidden])').count(), 0);

    // Empty titles too.
    await showView(a, 'notes');
    await a.getByTestId('note-title').fill('   ');
    await a.getByTestId('note-add').click();
    await a.getByText('Give the note a title.').waitFor();

    // What gets past the form (here: another client of the same data) meets the server's rule.
    const id = await a.evaluate(async () => {
      const id = crypto.randomUUID();
      await window.ferry.put('expenses', {
        id, description: 'Taxi refund', amount: -18, currency: 'EUR', category: 'Travel',
        date: '2025-06-02', submittedBy: 'alice', createdAt: Date.now(),
      });
      return id;
    });
    await syncSettled(a);
    await eventually(async () => assert.equal(await a.getByTestId('inbox-count').textContent(), '1'));
    await showView(a, 'inbox');
    const letter = a.locator(`[data-testid="dead-letter"][data-record-id="${id}"]`);
    await letter.waitFor();
    assert.match(await letter.getByTestId('letter-reason').textContent(), /negative/);
    assert.ok(!(await server.records()).has(`expenses/${id}`), 'the server did not store it');
    await screenshot(a, '07-dead-letter');

    // Edit: the editor catches the same mistake before sending again.
    await letter.getByTestId('letter-edit').click();
    await letter.getByTestId('letter-send').click();
    await letter.getByText('The amount cannot be negative', { exact: false }).waitFor();
    await letter.getByTestId('letter-amount').fill('18');
    await letter.getByTestId('letter-send').click();
    await letter.waitFor({ state: 'detached' });
    assert.equal(await a.getByTestId('history-item').first().getAttribute('data-choice'), 'edit');

    await syncSettled(a);
    const stored = (await server.records()).get(`expenses/${id}`);
    assert.ok(stored, 'the fixed expense reached the server');
    assert.equal(stored.fields.amount, 18);
    assert.equal(stored.fields.description, 'Taxi refund');
    await showView(a, 'expenses');
    await a.locator(`[data-testid="expense-row"][data-id="${id}"]`).waitFor();
    assert.equal(await a.getByTestId('inbox-count').textContent(), '');
    await screenshot(a, '08-expenses');
  });

  it('the badge shows retries while the server is in trouble, and recovers by itself', T, async () => {
    const b = bob.page;
    await bob.context.route('**/v1/sync/**', (route) => route.fulfill({
      status: 503,
      headers: { 'Content-Type': 'application/json', 'Retry-After': '3' },
      body: JSON.stringify({ error: { code: 'unavailable', message: 'down for maintenance' } }),
    }));
    await showView(b, 'tasks');
    await b.getByTestId('task-title').fill('Call the crane operator');
    await b.getByTestId('task-add').click();
    const badge = b.getByTestId('sync-badge');
    await eventually(async () => assert.equal(await badge.getAttribute('data-status'), 'backoff'));
    assert.match(await badge.textContent(), /Retrying (in \d+ s|now|soon)/);
    assert.equal(await b.getByTestId('outbox-depth').textContent(), '1');
    await screenshot(b, '10-retrying');
    await bob.context.unroute('**/v1/sync/**');
    // No click needed: the engine retries when the wait is over.
    await eventually(async () => assert.equal(await badge.getAttribute('data-status'), 'synced'), { timeout: 60_000 });
    const onServer = [...(await server.records()).values()];
    assert.ok(onServer.some((r) => r.collection === 'tasks' && r.fields.title === 'Call the crane operator'));
  });

  it('the app shell loads with no network after the first visit (service worker), and works offline', T, async () => {
    const carol = await openDevice(browser, server.url, 'carol', { serviceWorkers: 'allow', viewport: { width: 390, height: 844 } });
    const p = carol.page;
    try {
      await p.evaluate(async () => {
        await navigator.serviceWorker.ready;
        if (!navigator.serviceWorker.controller) {
          await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
        }
      });
      await syncSettled(p);
      await carol.context.setOffline(true);
      await p.reload();
      await appReady(p);
      await eventually(async () => assert.equal(await p.getByTestId('sync-badge').getAttribute('data-status'), 'offline'));
      // The records synced before are there, from IndexedDB.
      await p.getByTestId('note-card').filter({ hasText: 'Pump station visit' }).waitFor();
      // A new page in the same browser opens offline too.
      const second = await carol.context.newPage();
      await second.goto('/#tasks');
      await appReady(second);
      await second.close();

      await p.getByTestId('note-title').fill('Written without a network');
      await p.getByTestId('note-add').click();
      await p.getByTestId('note-card').filter({ hasText: 'Written without a network' }).waitFor();
      assert.equal(await p.getByTestId('outbox-depth').textContent(), '1');
      await screenshot(p, '09-offline-shell-mobile');

      await carol.context.setOffline(false);
      await syncSettled(p);
      const onServer = [...(await server.records()).values()];
      assert.ok(onServer.some((r) => r.collection === 'notes' && r.fields.title === 'Written without a network'));
    } finally {
      await carol.context.close();
    }
  });

  it('writes left in the outbox when the app closes reach the server from its service worker (Background Sync)', T, async () => {
    const dana = await openDevice(browser, server.url, 'dana', { serviceWorkers: 'allow', viewport: { width: 390, height: 844 } });
    const p = dana.page;
    const context = dana.context;
    try {
      await p.evaluate(async () => {
        await navigator.serviceWorker.ready;
        if (!navigator.serviceWorker.controller) {
          await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
        }
      });
      // The page named the signed-in person to the worker (www/sw.js keeps it in a cache).
      await eventually(async () => assert.equal(await p.evaluate(async () => {
        const hit = await (await caches.open('ferry-field-session')).match('/__ferry-field-session');
        return hit ? (await hit.json()).user : null;
      }), 'dana'));
      await syncSettled(p);

      // The network goes; two notes are written and wait in the outbox.
      await context.setOffline(true);
      await eventually(async () => assert.equal(await p.getByTestId('sync-badge').getAttribute('data-status'), 'offline'));
      const titles = ['Left in the outbox (1)', 'Left in the outbox (2)'];
      for (const title of titles) {
        await p.getByTestId('note-title').fill(title);
        await p.getByTestId('note-add').click();
        await p.getByTestId('note-card').filter({ hasText: title }).waitFor();
      }
      assert.equal(await p.getByTestId('outbox-depth').textContent(), '2');
      // The page registered the Background Sync tag while writes wait.
      await eventually(async () => assert.equal(await p.evaluate(() => window.ferry.backgroundSync?.status), 'sync'));
      await screenshot(p, '11-closing-with-writes-pending');
      const notesOnServer = async () => [...(await server.records()).values()]
        .filter((r) => r.collection === 'notes' && titles.includes(r.fields.title));
      assert.deepEqual(await notesOnServer(), []);

      // A blank page (not the app) to drive the DevTools protocol from; then the app closes.
      const driver = await context.newPage();
      const cdp = await context.newCDPSession(driver);
      const registrations = new Map();
      cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations: list }) => {
        for (const r of list) if (!r.isDeleted) registrations.set(r.scopeURL, r.registrationId);
      });
      await cdp.send('ServiceWorker.enable');
      const registrationId = await eventually(async () => {
        const id = registrations.get(`${server.url}/`);
        assert.ok(id, 'the registration is known');
        return id;
      });
      await p.close({ runBeforeUnload: false });
      assert.deepEqual(context.pages().map((page) => page.url()), ['about:blank'], 'no page of the app is open');

      // The network is back; the browser fires the registered tag (here through the protocol,
      // as Chromium does when it sees the connection return) and the worker pushes.
      await context.setOffline(false);
      await cdp.send('ServiceWorker.dispatchSyncEvent', { origin: server.url, registrationId, tag: 'ferry-sync', lastChance: false });
      await eventually(async () => assert.equal((await notesOnServer()).length, titles.length), { timeout: 60_000 });
      // Exactly once each, with what was typed.
      assert.deepEqual((await notesOnServer()).map((r) => r.fields.title).sort(), [...titles].sort());
      assert.deepEqual(context.pages().map((page) => page.url()), ['about:blank'], 'still no page of the app');

      // Opened again, the app has nothing left to send.
      const again = await context.newPage();
      await again.goto('/');
      await appReady(again);
      for (const title of titles) await again.getByTestId('note-card').filter({ hasText: title }).waitFor();
      await eventually(async () => assert.equal(await again.getByTestId('sync-badge').getAttribute('data-status'), 'synced'));
      assert.equal(await again.getByTestId('outbox-depth').textContent(), '0');
      await screenshot(again, '12-reopened-after-background-sync');
    } finally {
      if (dana.errors.length) console.log(`page errors on dana's device:\n  ${dana.errors.join('\n  ')}`);
      await context.close();
    }
  });

  it('the app is an installable PWA (manifest, icons)', T, async () => {
    const context = await browser.newContext({ baseURL: server.url });
    const page = await context.newPage();
    try {
      await page.goto('/');
      const href = await page.locator('link[rel="manifest"]').getAttribute('href');
      const res = await page.request.get(href);
      assert.equal(res.status(), 200);
      const manifest = await res.json();
      assert.equal(manifest.name, 'Ferry Field');
      assert.equal(manifest.display, 'standalone');
      assert.match(manifest.theme_color, /^#[0-9a-f]{6}$/i);
      const sizes = manifest.icons.map((i) => i.sizes);
      assert.ok(sizes.includes('192x192') && sizes.includes('512x512'));
      for (const icon of manifest.icons) {
        const r = await page.request.get(icon.src);
        assert.equal(r.status(), 200, icon.src);
        assert.equal(r.headers()['content-type'].split(';')[0], icon.type, icon.src);
      }
      const sw = await page.request.get('/sw.js');
      assert.equal(sw.status(), 200);
      assert.match(await sw.text(), /main\.[0-9a-f]+\.js/);
      // Chromium's own verdict, when the protocol offers it.
      const cdp = await context.newCDPSession(page);
      await page.evaluate(() => navigator.serviceWorker.ready);
      const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
      // Playwright's contexts are incognito profiles, where Chromium never installs apps: that
      // one says nothing about the app.
      assert.deepEqual(installabilityErrors.filter((e) => e.errorId !== 'in-incognito'), []);
    } finally {
      await context.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// What a person does to edit records.

/** Flips the app's Offline switch the way a person does: a click on it. */
async function offlineSwitch(page, on) {
  if ((await page.getByTestId('offline-switch').isChecked()) !== on) await page.locator('label.switch').click();
  assert.equal(await page.getByTestId('offline-switch').isChecked(), on);
}

async function editNote(page, id, { title, body }) {
  await showView(page, 'notes');
  const card = page.locator(`[data-testid="note-card"][data-id="${id}"]`);
  await card.getByTestId('note-edit').click();
  if (title !== undefined) await card.getByTestId('note-edit-title').fill(title);
  if (body !== undefined) await card.getByTestId('note-edit-body').fill(body);
  await card.getByTestId('note-save').click();
  await card.getByTestId('note-edit').waitFor();
}

async function editTask(page, id, { title }) {
  await showView(page, 'tasks');
  const item = page.locator(`[data-testid="task-item"][data-id="${id}"]`);
  await item.getByTestId('task-edit').click();
  await item.getByTestId('task-edit-title').fill(title);
  await item.getByTestId('task-save').click();
  await item.getByTestId('task-edit').waitFor();
}

async function editExpense(page, id, { amount, description }) {
  await showView(page, 'expenses');
  const row = page.locator(`[data-testid="expense-row"][data-id="${id}"]`);
  await row.getByTestId('expense-edit').click();
  if (description !== undefined) await row.getByTestId('expense-edit-description').fill(description);
  if (amount !== undefined) await row.getByTestId('expense-edit-amount').fill(amount);
  await row.getByTestId('expense-save').click();
  await row.getByTestId('expense-edit').waitFor();
}
