// Fault 1: a server restored from an older backup, detected through the server's history
// identity (`epoch`, `head` in pull answers).
//
// A device whose cursor is beyond the restored server's head used to show `idle`, outbox 0,
// no error: what the server lost never came back, and another device's new writes (taking
// versions below the first device's cursor) never reached it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { faultSuite, openPage, put, uniqueName, until, untilServer } from './harness.mjs';

const suite = faultSuite();

const synced = (page) =>
  until(page, () => window.lastState?.outboxDepth === 0 && window.lastState?.status === 'idle', null, 'synced');

test('after a restore the devices restore the truth and converge again', async () => {
  const alice = await suite.browser.newContext();
  const bob = await suite.browser.newContext();
  try {
    const a = await openPage(alice, suite.server);
    await a.evaluate((n) => window.startFerry(n, { live: false }), uniqueName('alice'));
    const old = uniqueName('old');
    await put(a, 'notes', { id: old, title: 'in the backup' });
    await synced(a);

    await suite.server.halt();
    suite.server.snapshot('backup');
    await suite.server.resume();
    const lost = [];
    for (let i = 0; i < 5; i++) {
      lost.push(uniqueName('lost'));
      await put(a, 'notes', { id: lost[i], title: `written after the backup ${i}` });
    }
    await a.evaluate(() => window.ferry.syncNow());
    await synced(a);

    await suite.server.halt();
    suite.server.restore('backup');
    await suite.server.resume();

    // Another device writes to the restored server: its versions fall below alice's cursor.
    const b = await openPage(bob, suite.server);
    await b.evaluate((n) => window.startFerry(n, { user: 'bob', live: false }), uniqueName('bob'));
    const fromBob = uniqueName('bob');
    await put(b, 'notes', { id: fromBob, title: 'written on the restored server' });
    await synced(b);

    await a.evaluate(() => window.ferry.syncNow());
    const state = await until(a, () => window.lastState?.rollback && window.lastState, null, 'alice detects the rollback');
    assert.ok(state.rollback.at > 0);
    await untilServer(async () => {
      const records = await suite.server.records();
      return [old, ...lost, fromBob].every((id) => records.has(`notes/${id}`));
    }, 'the server holds everything any device held');
    await until(a, (id) => window.ferry.get('notes', id) !== undefined, fromBob, 'alice gets bob\'s write');
    await b.evaluate(() => window.ferry.syncNow());
    await until(b, (ids) => ids.every((id) => window.ferry.get('notes', id) !== undefined), lost, 'bob gets what the restore lost');
  } finally {
    await alice.close();
    await bob.close();
  }
});
