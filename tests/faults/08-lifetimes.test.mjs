// Fault 8: lifetimes. Query observables used to live until `.free()`: 1,000 queries created
// and dropped made every later write 4-5x slower. A query nobody subscribes to must cost
// nothing per write (and be freed once collected). And the core's outcome events reach the
// app as the `outcomes` observable: a change merged with another device's shows up there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { faultSuite, openPage, put, uniqueName, until } from './harness.mjs';

const suite = faultSuite({ gc: true });

/** Milliseconds for `n` writes, each awaited (so each recomputes the live queries). */
const timeWrites = (page, n, prefix) =>
  page.evaluate(
    async ([n, prefix]) => {
      const start = performance.now();
      for (let i = 0; i < n; i++) await window.ferry.put('notes', { id: `${prefix}-${i}`, title: `t${i}` });
      return performance.now() - start;
    },
    [n, prefix],
  );

test('1,000 dropped queries do not slow writes down', async () => {
  const context = await suite.browser.newContext();
  try {
    const tab = await openPage(context, suite.server);
    await tab.evaluate((n) => window.startFerry(n, { live: false }), uniqueName('queries'));
    // One subscribed query, as an app has.
    await tab.evaluate(() => {
      window.rows = [];
      window.ferry.query('notes').subscribe((r) => { window.rows = r; });
    });
    await timeWrites(tab, 50, 'warm');
    const baseline = await timeWrites(tab, 150, 'base');
    await tab.evaluate(() => {
      for (let i = 0; i < 1000; i++) window.ferry.query('notes', { orderBy: 'title' });
      gc();
    });
    const withDropped = await timeWrites(tab, 150, 'dropped');
    assert.ok(
      withDropped < baseline * 2.5,
      `writes with 1,000 dropped queries took ${withDropped.toFixed(0)} ms vs ${baseline.toFixed(0)} ms without`,
    );
    assert.equal(await tab.evaluate(() => window.rows.length), 350, 'the subscribed query is still live');
  } finally {
    await context.close();
  }
});

test('a change merged with another device shows up in the outcomes observable', async () => {
  const alice = await suite.browser.newContext();
  const bob = await suite.browser.newContext();
  try {
    const a = await openPage(alice, suite.server);
    const b = await openPage(bob, suite.server);
    await a.evaluate((n) => window.startFerry(n, { user: 'alice' }), uniqueName('alice'));
    await b.evaluate((n) => window.startFerry(n, { user: 'bob' }), uniqueName('bob'));
    await b.evaluate(() => {
      window.outcomes = [];
      window.ferry.outcomes.subscribe((list) => { window.outcomes = list; });
    });
    const id = uniqueName('shared');
    await put(a, 'notes', { id, title: 'title', body: 'body' });
    await until(b, (id) => window.ferry.get('notes', id) !== undefined, id, 'bob has the note');

    await bob.setOffline(true);
    await b.evaluate((id) => window.ferry.patch('notes', id, { body: 'bob\'s body' }), id);
    await a.evaluate((id) => window.ferry.patch('notes', id, { title: 'alice\'s title' }), id);
    await until(a, () => window.lastState?.outboxDepth === 0 && window.lastState?.status === 'idle', null, 'alice synced');
    await bob.setOffline(false);
    await b.evaluate(() => window.ferry.syncNow());
    const merged = await until(
      b,
      (id) => window.outcomes.find((o) => o.kind === 'merged' && o.id === id),
      id,
      'bob hears that his change was merged',
    );
    assert.equal(merged.collection, 'notes');
    assert.ok(merged.seq >= 1);
    const note = await b.evaluate((id) => window.ferry.get('notes', id), id);
    assert.deepEqual([note.title, note.body], ['alice\'s title', 'bob\'s body']);
  } finally {
    await alice.close();
    await bob.close();
  }
});
