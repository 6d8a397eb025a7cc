// Partial sync in the browser (issue 14): three devices of one tenant — alice, bob and carol
// the manager — against the real ferry-server started with a permissions config. What each
// device holds is read from the raw IndexedDB (every database, every object store, every row),
// not only through the Ferry API, so a record that reached storage without showing in the
// replica would still be caught.
//
//   node --test tests/engine-e2e/permissions.test.mjs      (part of npm run test:engine)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, ensurePackage, ensureServerBinary, launchChromium, openPage, rawIndexedDb, uniqueName, until } from './harness.mjs';

/** The permissions under test: the sample app's shape (www/, `ferry-server --demo`). */
const CONFIG = `
[collections.notes]
read = ["owner", "users_in:shared_with"]
update = ["owner"]

[collections.expenses]
read = ["owner", "role:manager"]
update = ["owner"]

[collections.expenses.schema]
type = "object"
properties.amount = { type = "number", minimum = 0 }
`;

let server;
let browser;

before(async () => {
  ensurePackage();
  const bin = ensureServerBinary();
  server = await Server.start(bin, { configToml: CONFIG });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A device: its own browser context (its own IndexedDB) signed in as `user`. */
async function device(tenant, user, role) {
  const context = await browser.newContext();
  const page = await openPage(context, server);
  const claims = { tenant, user, exp: Math.floor(Date.now() / 1000) + 3600 };
  if (role) claims.role = role;
  const token = server.signedToken(claims);
  await page.evaluate(([n, t]) => window.startFerry(n, { token: t }), [uniqueName(user), token]);
  return { context, page };
}

const put = (page, collection, record) =>
  page.evaluate(([c, r]) => window.ferry.put(c, r).then(() => true), [collection, record]);

/** Syncs `page` until a cycle that started after this call has succeeded with nothing pending. */
async function settle(page, what) {
  const since = await page.evaluate(() => {
    const now = Date.now();
    window.ferry.syncNow();
    return now;
  });
  await until(
    page,
    (t) => window.lastState?.synced === true && window.lastState.lastSyncedAt > t,
    since,
    what,
  );
}

test('each device stores exactly what its user may read; unsharing removes; a refused write is a dead letter', async () => {
  const tenant = uniqueName('perm');
  const mark = uniqueName('m');
  const privateId = `private-${mark}`;
  const sharedId = `shared-${mark}`;
  const expenseId = `expense-${mark}`;
  const PRIVATE = `PRIVATE-TEXT-${mark}`;
  const SHARED = `SHARED-TEXT-${mark}`;
  const EXPENSE = `EXPENSE-TEXT-${mark}`;
  const alice = await device(tenant, 'alice');
  const bob = await device(tenant, 'bob');
  const carol = await device(tenant, 'carol', 'manager');
  try {
    // Alice writes a private note, a note shared with bob, and an expense.
    await put(alice.page, 'notes', { id: privateId, title: PRIVATE });
    await put(alice.page, 'notes', { id: sharedId, title: SHARED, shared_with: ['bob'] });
    await put(alice.page, 'expenses', { id: expenseId, label: EXPENSE, amount: 30 });
    await settle(alice.page, 'alice pushed her three records');
    // The server set the owner on create; alice's own device takes it from the pull too.
    await until(alice.page, (id) => window.ferry.get('notes', id)?.owner === 'alice', privateId, 'alice sees herself as the owner');

    // Bob's device gets the shared note; carol's gets the expense (she is a manager).
    const seen = await until(bob.page, (id) => window.ferry.get('notes', id), sharedId, 'bob has the shared note');
    assert.deepEqual(seen, { id: sharedId, title: SHARED, shared_with: ['bob'], owner: 'alice' });
    await until(carol.page, (id) => window.ferry.get('expenses', id), expenseId, 'carol (manager) has the expense');
    // One more full cycle each: the cursors are past every row alice wrote.
    await settle(bob.page, 'bob synced');
    await settle(carol.page, 'carol synced');

    const bobRaw = await rawIndexedDb(bob.page);
    assert.ok(bobRaw.includes(SHARED), 'the shared note is in bob\'s IndexedDB');
    assert.ok(!bobRaw.includes(PRIVATE) && !bobRaw.includes(privateId), 'alice\'s private note never reached bob\'s IndexedDB');
    assert.ok(!bobRaw.includes(EXPENSE) && !bobRaw.includes(expenseId), 'alice\'s expense never reached bob\'s IndexedDB');
    assert.equal(await bob.page.evaluate((id) => window.ferry.get('notes', id), privateId), undefined);

    const carolRaw = await rawIndexedDb(carol.page);
    assert.ok(carolRaw.includes(EXPENSE), 'the expense is in the manager\'s IndexedDB');
    assert.ok(!carolRaw.includes(PRIVATE) && !carolRaw.includes(SHARED), 'no note of alice reached carol\'s IndexedDB');

    const aliceRaw = await rawIndexedDb(alice.page);
    for (const text of [PRIVATE, SHARED, EXPENSE]) assert.ok(aliceRaw.includes(text), `alice keeps ${text}`);

    // Bob may read the shared note but not update it: the server refuses, the client keeps
    // his edit as a dead letter that says why.
    await bob.page.evaluate((id) => window.ferry.patch('notes', id, { title: 'bob was here' }), sharedId);
    const letter = await until(
      bob.page,
      () => {
        const [l] = window.ferry.deadLetters.getSnapshot();
        return l && { code: l.code, message: l.message, recordId: l.recordId, collection: l.collection };
      },
      null,
      'bob\'s refused edit becomes a dead letter',
    );
    assert.equal(letter.code, 'forbidden');
    assert.equal(letter.recordId, sharedId);
    assert.equal(letter.collection, 'notes');
    assert.match(letter.message, /may not update/);
    assert.match(letter.message, new RegExp(sharedId));
    await until(alice.page, (id) => window.ferry.get('notes', id)?.title, sharedId, 'alice still reads her note');
    assert.equal(await alice.page.evaluate((id) => window.ferry.get('notes', id).title, sharedId), SHARED, 'bob\'s edit did not land');
    // Bob lets it go (the record stays as the server has it).
    await bob.page.evaluate(() => window.ferry.deadLetters.getSnapshot()[0].discard());
    await until(bob.page, () => window.ferry.deadLetters.getSnapshot().length === 0, null, 'the dead letter is gone');

    // A refused expense (negative: the JSON Schema) is a dead letter too, naming the field.
    await put(bob.page, 'expenses', { id: `neg-${mark}`, label: 'refund?', amount: -5 });
    const schemaLetter = await until(
      bob.page,
      () => {
        const [l] = window.ferry.deadLetters.getSnapshot();
        return l && { code: l.code, message: l.message };
      },
      null,
      'the negative expense becomes a dead letter',
    );
    assert.equal(schemaLetter.code, 'validation_failed');
    assert.match(schemaLetter.message, /amount/);
    await bob.page.evaluate(() => window.ferry.deadLetters.getSnapshot()[0].discard());

    // Alice unshares: bob's device drops the note, from storage too.
    await alice.page.evaluate((id) => window.ferry.patch('notes', id, { shared_with: [] }), sharedId);
    await settle(alice.page, 'alice pushed the unsharing');
    await until(bob.page, (id) => window.ferry.get('notes', id) === undefined, sharedId, 'the note leaves bob\'s device');
    await settle(bob.page, 'bob synced after the removal');
    const bobAfter = await rawIndexedDb(bob.page);
    assert.ok(!bobAfter.includes(SHARED), 'nothing of the unshared note stays in bob\'s IndexedDB');
    assert.ok(!bobAfter.includes(PRIVATE) && !bobAfter.includes(EXPENSE));
    assert.equal(await bob.page.evaluate(() => window.lastState.deadLetters), 0, 'a removal without pending edits is no dead letter');
    // Alice keeps it, unshared.
    assert.deepEqual(await alice.page.evaluate((id) => window.ferry.get('notes', id).shared_with, sharedId), []);
  } finally {
    for (const d of [alice, bob, carol]) await d.context.close();
  }
});
