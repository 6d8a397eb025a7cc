// Fault 3: wrong device clocks, calibrated against `server_time` in the server's answers.
//
// A device 24 h ahead used to win every last-writer-wins decision against later edits and
// drag every other device's clock 24 h ahead with its stamps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { faultSuite, openPage, put, uniqueName, until } from './harness.mjs';

const suite = faultSuite();

const DAY_MS = 24 * 60 * 60 * 1000;

test('a device 24 h ahead does not win against a later edit', async () => {
  const fast = await suite.browser.newContext();
  const right = await suite.browser.newContext();
  try {
    // The fast device's Date runs a day ahead.
    await fast.addInitScript((skew) => {
      const RealDate = Date;
      const now = () => RealDate.now() + skew;
      globalThis.Date = class extends RealDate {
        constructor(...args) {
          super(...(args.length ? args : [now()]));
        }
        static now() {
          return now();
        }
      };
    }, DAY_MS);
    const f = await openPage(fast, suite.server);
    const r = await openPage(right, suite.server);
    await f.evaluate((n) => window.startFerry(n, { user: 'fast', live: false }), uniqueName('fast'));
    await r.evaluate((n) => window.startFerry(n, { user: 'right', live: false }), uniqueName('right'));

    const id = uniqueName('task');
    await put(r, 'tasks', { id, title: 'first' });
    await r.evaluate(() => window.ferry.syncNow());
    await until(r, () => window.lastState?.outboxDepth === 0 && window.lastState?.status === 'idle', null, 'synced');
    // The fast device syncs once (calibrating against the suite.server), then edits.
    await f.evaluate(() => window.ferry.syncNow());
    await until(f, (id) => window.ferry.get('tasks', id) !== undefined, id, 'the fast device has the task');
    await put(f, 'tasks', { id, title: 'earlier edit, fast clock' });
    await f.evaluate(() => window.ferry.syncNow());
    await until(f, () => window.lastState?.outboxDepth === 0 && window.lastState?.status === 'idle', null, 'fast synced');
    await new Promise((res) => setTimeout(res, 1_500));
    await put(r, 'tasks', { id, title: 'later edit, right clock' });
    await r.evaluate(() => window.ferry.syncNow());
    await until(r, () => window.lastState?.outboxDepth === 0 && window.lastState?.status === 'idle', null, 'right synced');
    await f.evaluate(() => window.ferry.syncNow());
    await until(f, (id) => window.ferry.get('tasks', id)?.title === 'later edit, right clock', id, 'the later edit wins on the fast device');
    assert.equal((await suite.server.record('tasks', id)).fields.title, 'later edit, right clock');
    const stamp = (await suite.server.record('tasks', id)).hlc;
    const wall = Number(String(stamp).split('-')[0]);
    assert.ok(wall < Date.now() + 60_000 + 5_000, `the server holds no stamp beyond the drift bound: ${stamp}`);
  } finally {
    await fast.close();
    await right.close();
  }
});
