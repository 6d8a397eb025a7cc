// Ferry: `ferry.put('notes', record)` — the record and its outbox entry, durable when the
// promise resolves. Sync benchmarks talk to ferry-server through the page's origin (/v1 is
// proxied by bench/lib/serve.mjs).
import { init, Ferry } from 'ferry';
import { expose, coldStartIfAsked, makeRecord } from './common.js';
import { installTrace } from './idb-trace.js';
import { when } from './promises.js';

if (new URLSearchParams(location.search).has('trace')) installTrace();

const scriptStart = performance.now();
// The wasm is instantiated inside the timed region of every benchmark that opens Ferry: as
// in an app, `Ferry.open` (the package entry) loads it, and reads the database meanwhile.
// Beside the bundle (the same URL the package entry resolves; alt/ for a second build).
const ready = () => init(new URL('ferry_bg.wasm', import.meta.url));

const COLLECTIONS = { notes: { policy: 'merge-fields' } };
let ferry;
let token = null;

// Where an open spends its time (reported with the cold-start figures).
const marks = {};

async function openFerry({ base = location.origin, live = false } = {}) {
  const t0 = performance.now();
  const opening = Ferry.open({
    name: 'bench',
    url: `${base}/v1`,
    getToken: () => token,
    collections: COLLECTIONS,
    live,
  });
  // The same module load Ferry.open started (init() returns one promise per page).
  ready().then(() => {
    marks.wasmInitMs = performance.now() - t0;
  });
  ferry = await opening;
  marks.openMs = performance.now() - t0;
  return ferry;
}

let offlineDrain = null;

const adapter = {
  name: 'ferry',
  async open() {
    await openFerry();
  },
  writeOne(rec) {
    return ferry.put('notes', rec);
  },
  async seed(recs) {
    await Promise.all(recs.map((r) => ferry.put('notes', r)));
  },
  async readAll() {
    const t0 = performance.now();
    const { value } = await when(ferry.query('notes', {}), () => true);
    marks.firstQueryMs = performance.now() - t0;
    return value;
  },
  marks,
  async count(tag) {
    const { value } = await when(ferry.query('notes', {}), () => true);
    return value.filter((r) => r.id.startsWith(`${tag}-`)).length;
  },
  extra: {
    // Instantiates the wasm (before the driver takes the browser offline).
    async init() {
      await ready();
      return true;
    },
    // 1b. With a live query subscribed: put() → callback, and put() → promise resolved.
    async subscribeLatency({ warmup, n, tag = 'sub' }) {
      let pendingId = null;
      let seenAt = 0;
      const unsub = ferry.query('notes', {}).subscribe((rows) => {
        if (pendingId && !seenAt && rows.some((r) => r.id === pendingId)) seenAt = performance.now();
      });
      const seen = [];
      const resolved = [];
      let before = 0;
      for (let i = 0; i < warmup + n; i++) {
        const rec = makeRecord(i, tag);
        pendingId = rec.id;
        seenAt = 0;
        const t0 = performance.now();
        const p = ferry.put('notes', rec);
        await p;
        const t1 = performance.now();
        if (i >= warmup) {
          seen.push(seenAt ? seenAt - t0 : null);
          resolved.push(t1 - t0);
          if (seenAt && seenAt <= t1) before += 1;
        }
      }
      unsub();
      return { seen, resolved, before };
    },
    // 3 (preparation): fill the profile by a pull from the server, so the outbox is empty.
    async seedByPull({ base, token: t, n }) {
      token = t;
      await openFerry({ base });
      ferry.syncNow();
      await when(ferry.query('notes', {}), (rows) => rows.length >= n);
      await when(ferry.syncState, (s) => s.status === 'idle' && s.lastSyncedAt != null && s.inFlight === 0);
      const { value } = await when(ferry.query('notes', {}), () => true);
      await ferry.close();
      return { count: value.length };
    },
    // 4. Pull everything from the server into an empty profile until durable (the pull's
    // last page is committed when the sync state reports the cycle done).
    async pull({ base, token: t, n }) {
      token = t;
      const t0 = performance.now();
      await openFerry({ base });
      ferry.syncNow();
      const rows = when(ferry.query('notes', {}), (r) => r.length >= n);
      // The first finished cycle of a fresh profile pulled up to the server's cursor, its
      // last page committed. (Not `progress.pulled`: the syncNow() above may queue a second,
      // empty cycle, and `progress` describes the latest cycle.)
      const synced = when(ferry.syncState, (s) => s.status === 'idle' && s.lastSyncedAt != null && s.inFlight === 0);
      // A pull that stalls fails with the engine's last sync state instead of waiting out the
      // driver's timeout.
      let last = null;
      const unwatch = ferry.syncState.subscribe((s) => {
        last = s;
      });
      let timer;
      const stalled = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`pull stalled; sync state: ${JSON.stringify(last)}`)), 120_000);
      });
      const [a, b] = await Promise.race([Promise.all([rows, synced]), stalled]).finally(() => {
        clearTimeout(timer);
        unwatch();
      });
      const ms = Math.max(a.t, b.t) - t0;
      const count = a.value.length;
      await ferry.close();
      return { ms, total: count, rowsAt: a.t - t0, syncedAt: b.t - t0 };
    },
    // 4. Queue n creates while the browser is offline (the driver has set it offline).
    async queueOffline({ base, token: t, n }) {
      token = t;
      await openFerry({ base });
      const recs = [];
      for (let i = 0; i < n; i++) recs.push(makeRecord(i, 'off'));
      await Promise.all(recs.map((r) => ferry.put('notes', r)));
      let onlineAt = 0;
      window.addEventListener('online', () => {
        onlineAt = performance.now();
      });
      const depth = ferry.metrics().outboxDepth;
      offlineDrain = when(ferry.syncState, (s) => onlineAt > 0 && s.outboxDepth === 0 && s.inFlight === 0).then(({ t }) => ({
        ms: t - onlineAt,
        sent: depth,
      }));
      return { depth };
    },
    // 4. After the driver brought the browser online: until the outbox is empty.
    async drain() {
      const r = await offlineDrain;
      await ferry.close();
      return r;
    },
  },
};
expose(adapter);
coldStartIfAsked(adapter, scriptStart);
