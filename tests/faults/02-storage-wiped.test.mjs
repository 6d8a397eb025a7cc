// Fault 2: storage wiped under a running tab — here another tab deletes the database (the
// scenario itself is in storage-wiped.mjs, shared with 2b).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { faultSuite } from './harness.mjs';
import { storageWipedScenario } from './storage-wiped.mjs';

const suite = faultSuite();

test('another tab deletes the database under a running tab', async () => {
  await storageWipedScenario(suite, async (context, _tab, name) => {
    const other = await context.newPage();
    await other.goto(`${suite.server.url}/index.html`);
    const deleted = await other.evaluate(
      (n) =>
        new Promise((resolve) => {
          const r = indexedDB.deleteDatabase(n);
          r.onsuccess = () => resolve('deleted');
          r.onerror = () => resolve('error');
          r.onblocked = () => resolve('blocked');
        }),
      name,
    );
    assert.equal(deleted, 'deleted', 'the running tab lets go of the database');
    await other.close();
  });
});
