// End-to-end: partial sync in the sample app (Ferry Field) against `ferry-server --demo`.
//
//   npm run test:e2e        (builds the app and the server first; see prepare.mjs)
//
// Alice, Bob and Carol (signed in as a manager) on three devices. Alice writes a private note,
// a note shared with Bob (typed into the share field) and an expense claim. Bob's device gets
// the shared note only, Carol's the claim only — checked in the page and in the raw IndexedDB.
// Bob's edit of Alice's read-only note is refused and shows in his Inbox saying why; Alice
// unshares and the note leaves Bob's device. Screenshots 11–14 go to tests/e2e/screenshots/.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openDevice, syncSettled, eventually, screenshot, showView, appReady } from './harness.mjs';
import { rawIndexedDb } from '../engine-e2e/harness.mjs';

const T = { timeout: 180_000 };

/** Signs in through the form with the manager box ticked. */
async function openManagerDevice(browser, baseURL, user) {
  const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 860 }, serviceWorkers: 'block' });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto('/');
  await page.getByTestId('signin-name').fill(user);
  await page.getByTestId('signin-manager').check();
  await page.getByTestId('signin-submit').click();
  await appReady(page);
  return { user, context, page, errors };
}

describe('Ferry Field: each device holds what its user may read', { concurrency: false }, () => {
  let server;
  let browser;
  let alice;
  let bob;
  let carol;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });

  after(async () => {
    for (const d of [alice, bob, carol]) {
      if (d && d.errors.length) console.log(`page errors on ${d.user}'s device:\n  ${d.errors.join('\n  ')}`);
    }
    await browser?.close();
    await server?.stop();
  });

  it('private, shared and manager-only records reach exactly their readers; a refused edit says why; unsharing removes', T, async () => {
    alice = await openDevice(browser, server.url, 'alice');
    bob = await openDevice(browser, server.url, 'bob');
    carol = await openManagerDevice(browser, server.url, 'carol');
    assert.equal(await carol.page.getByTestId('user-role').textContent(), 'manager');
    const a = alice.page;

    // Alice: a private note, a note shared with Bob, an expense claim.
    await a.getByTestId('private-title').fill('Salary review notes');
    await a.getByTestId('private-body').fill('Only for me.');
    await a.getByTestId('private-add').click();
    await a.getByTestId('private-title').fill('Handover for Bob');
    await a.getByTestId('private-body').fill('Valve 7 sticks; keys are in the van.');
    await a.getByTestId('private-share').fill('Bob');
    await a.getByTestId('private-add').click();
    const shared = a.getByTestId('private-card').filter({ hasText: 'Handover for Bob' });
    await shared.waitFor();
    assert.equal(await shared.getByTestId('private-card-sharing').textContent(), 'Shared with bob');
    const sharedId = await shared.getAttribute('data-id');
    const privateCard = a.getByTestId('private-card').filter({ hasText: 'Salary review notes' });
    assert.equal(await privateCard.getByTestId('private-card-sharing').textContent(), 'Private: only you');
    const privateId = await privateCard.getAttribute('data-id');
    await showView(a, 'expenses');
    await a.getByTestId('claim-description').fill('Taxi to the airport');
    await a.getByTestId('claim-amount').fill('42.50');
    await a.getByTestId('claim-add').click();
    const claim = a.getByTestId('claim-row').filter({ hasText: 'Taxi to the airport' });
    await claim.waitFor();
    const claimId = await claim.getAttribute('data-id');
    await syncSettled(a);
    await showView(a, 'notes');
    await a.getByTestId('private-list').scrollIntoViewIfNeeded();
    await screenshot(a, '11-private-and-shared-notes');

    // Bob: the shared note, read-only; not the private note, not the claim.
    const b = bob.page;
    await syncSettled(b);
    const bobsCard = b.locator(`[data-testid="private-card"][data-id="${sharedId}"]`);
    await bobsCard.waitFor();
    assert.equal(await bobsCard.getByTestId('private-card-sharing').textContent(), 'Shared with you by alice · read-only');
    assert.equal(await b.locator(`[data-id="${privateId}"]`).count(), 0);
    await showView(b, 'expenses');
    assert.equal(await b.getByTestId('claim-row').count(), 0);
    const bobRaw = await rawIndexedDb(b);
    assert.ok(bobRaw.includes('Valve 7 sticks'), 'the shared note is in Bob\'s IndexedDB');
    assert.ok(!bobRaw.includes('Salary review') && !bobRaw.includes(privateId), 'the private note never reached Bob\'s IndexedDB');
    assert.ok(!bobRaw.includes('Taxi to the airport') && !bobRaw.includes(claimId), 'the claim never reached Bob\'s IndexedDB');

    // Carol, the manager: the claim with its author; no note of Alice.
    const c = carol.page;
    await syncSettled(c);
    await showView(c, 'expenses');
    const carolsClaim = c.locator(`[data-testid="claim-row"][data-id="${claimId}"]`);
    await carolsClaim.waitFor();
    assert.equal(await carolsClaim.getByTestId('claim-row-author').textContent(), 'Claimed by alice');
    assert.equal(await c.getByTestId('claims-scope').textContent(), 'As a manager you receive every claim of the team.');
    await c.getByTestId('claims-list').scrollIntoViewIfNeeded();
    await screenshot(c, '12-manager-sees-claims');
    const carolRaw = await rawIndexedDb(c);
    assert.ok(carolRaw.includes('Taxi to the airport'));
    assert.ok(!carolRaw.includes('Salary review') && !carolRaw.includes('Valve 7 sticks'), 'no note of Alice reached Carol\'s IndexedDB');

    // Bob edits Alice's read-only note: refused, shown in his Inbox with the server's reason.
    await showView(b, 'notes');
    await bobsCard.getByTestId('private-edit').click();
    await bobsCard.getByTestId('private-edit-title').fill('Handover for Bob (done)');
    await bobsCard.getByTestId('private-save').click();
    await showView(b, 'inbox');
    const letter = b.locator(`[data-testid="dead-letter"][data-record-id="${sharedId}"]`);
    await letter.waitFor({ timeout: 30_000 });
    assert.match(await letter.getByTestId('letter-reason').textContent(), /you may not update `private_notes` record/);
    // Only the title was changed: the share list Bob saw ("bob") went out untouched.
    const refused = await b.evaluate(() => window.ferry.deadLetters.getSnapshot()[0].desired);
    assert.equal(refused.title, 'Handover for Bob (done)');
    assert.deepEqual(refused.shared_with, ['bob']);
    await screenshot(b, '13-refused-edit-dead-letter');
    await letter.getByTestId('letter-discard').click();
    await eventually(async () => assert.equal(await b.getByTestId('dead-letter').count(), 0));

    // Alice unshares (the share field emptied): the note leaves Bob's device, storage included.
    await showView(b, 'notes');
    // By id: while the card shows its edit form, its title is in an input, not in its text.
    const alicesCard = a.locator(`[data-testid="private-card"][data-id="${sharedId}"]`);
    await alicesCard.getByTestId('private-edit').click();
    await alicesCard.getByTestId('private-edit-share').fill('');
    await alicesCard.getByTestId('private-save').click();
    assert.equal(await alicesCard.getByTestId('private-card-sharing').textContent(), 'Private: only you');
    await syncSettled(a);
    await eventually(async () => {
      await syncSettled(b);
      assert.equal(await b.locator(`[data-testid="private-card"][data-id="${sharedId}"]`).count(), 0);
    });
    const bobAfter = await rawIndexedDb(b);
    assert.ok(!bobAfter.includes('Valve 7 sticks'), 'nothing of the unshared note stays in Bob\'s IndexedDB');
    await b.getByTestId('private-list').scrollIntoViewIfNeeded();
    await screenshot(b, '14-unshared-note-gone');
  });
});
