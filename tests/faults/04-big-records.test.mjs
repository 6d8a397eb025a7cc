// Fault 4: big records. Twenty valid records of 230 KiB (each under the 256 KiB record
// limit) used to make one 4.6 MiB batch that the server refused with 413 for good, freezing
// every later write into the same failing batch. Batches must be bounded by bytes, and a
// refused batch must never block later writes.
import { test } from 'node:test';
import { faultSuite, uniqueName, until, untilServer, withFerryTab } from './harness.mjs';

const suite = faultSuite();

test('twenty 230 KiB records and a later small write all reach the server', async () => {
  await withFerryTab(suite, 'big', { live: false }, async ({ context, tab }) => {
    await context.setOffline(true);
    const prefix = uniqueName('big');
    await tab.evaluate(async (p) => {
      const body = 'x'.repeat(230 * 1024);
      const writes = [];
      for (let i = 0; i < 20; i++) writes.push(window.ferry.put('notes', { id: `${p}-${i}`, title: `big ${i}`, body }));
      await Promise.all(writes);
    }, prefix);
    await context.setOffline(false);
    const small = uniqueName('small');
    await tab.evaluate((id) => window.ferry.put('notes', { id, title: 'small, later' }), small);
    await tab.evaluate(() => window.ferry.syncNow());
    await untilServer(async () => {
      const records = await suite.server.records();
      return records.has(`notes/${small}`) && [...Array(20).keys()].every((i) => records.has(`notes/${prefix}-${i}`));
    }, 'every record reaches the server');
    await until(tab, () => window.lastState?.outboxDepth === 0 && window.lastState?.deadLetters === 0, null, 'nothing left behind');
  });
});
