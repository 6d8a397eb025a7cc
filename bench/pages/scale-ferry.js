// Scale section, Ferry through its package entry: `query('notes', { orderBy: 'n', limit: 50 })`
// for the page, `put()` for writes, a pull from ferry-server to seed (so the outbox is empty,
// as after a normal session). The collection declares `indexes: ['n']` in the form issue 16
// proposes; engines without indexed queries ignore the unknown key.
import { Ferry } from 'ferry';
// The wasm-bindgen module the entry loaded: its init returns the same instance (for the size
// of the wasm memory, which the browser's JS heap figure leaves out).
import wasmModule from 'ferry-wasm';
import { exposeScale, firstPageIfAsked, PAGE } from './scale-common.js';
import { when } from './promises.js';

const COLLECTIONS = { notes: { policy: 'merge-fields', indexes: ['n'] } };
let ferry;
let token = null;

// The first page after a page load opens without waiting for the records (the option an
// app with a large local database uses for its first screen): the page comes from the
// declared index while the records load behind it. Every other measure opens the default way.
const firstPageLoad = new URLSearchParams(location.search).has('first');

async function openFerry() {
  ferry = await Ferry.open({
    name: 'scale',
    url: `${location.origin}/v1`,
    getToken: () => token,
    collections: COLLECTIONS,
    waitForRecords: !firstPageLoad,
  });
  return ferry;
}

const live = (options) => (onRows) => ferry.query('notes', options).subscribe(onRows);

const adapter = {
  name: 'ferry',
  open: openFerry,
  async firstPage() {
    const { value } = await when(ferry.query('notes', { orderBy: 'n', limit: PAGE }), () => true);
    return value;
  },
  // Everything loaded (the memory figure is taken after it).
  settled: () => ferry.loaded,
  watchPage: live({ orderBy: 'n', limit: PAGE }),
  watchAll: live({ orderBy: 'n' }),
  put: (rec) => ferry.put('notes', rec),
  async seed() {
    throw new Error('Ferry is seeded by a pull from ferry-server (S.pull)');
  },
  async count() {
    const { value } = await when(ferry.query('notes', {}), () => true);
    return value.length;
  },
  extra: {
    // (d) and the seed: pull everything from the server into an empty profile until durable
    // (the sync state reports the first cycle finished, every row visible to a query).
    async pull({ token: t, n, timeoutMs }) {
      token = t;
      const t0 = performance.now();
      await openFerry();
      ferry.syncNow();
      // No live query during the pull (a whole-list query would cost on every page): the first
      // finished cycle of a fresh profile has pulled up to the server's cursor.
      const synced = when(ferry.syncState, (s) => s.status === 'idle' && s.lastSyncedAt != null && s.inFlight === 0);
      let last = null;
      const unwatch = ferry.syncState.subscribe((s) => {
        last = s;
      });
      let timer;
      const stalled = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`pull stalled; sync state: ${JSON.stringify(last)}`)), timeoutMs);
      });
      const done = await Promise.race([synced, stalled]).finally(() => {
        clearTimeout(timer);
        unwatch();
      });
      const ms = done.t - t0;
      const count = await adapter.count();
      await ferry.close();
      return { ms, total: count, expected: n };
    },
    // (e) the wasm memory's size (bytes), beside the browser's figures.
    async wasmMemory() {
      const exports = await wasmModule();
      return exports.memory.buffer.byteLength;
    },
  },
};
exposeScale(adapter);
firstPageIfAsked(adapter);
