// In-page benchmark runners shared by every engine page. Each engine page builds an adapter
//   { name, open(), writeOne(rec, entry), writeMany?(recs, entries), seed(recs), readAll() }
// and calls `expose(adapter)`; the Node driver (bench/run.mjs) calls window.B.* through
// Playwright. All timing is taken in the page with performance.now().

const BODY =
  'Site visit notes: check the north wall for damp, photograph the meter, ask about the ' +
  'parking permit and confirm the next appointment by phone.';

/** The record every engine writes: the same fields everywhere. */
export function makeRecord(i, tag = 'r') {
  return {
    id: `${tag}-${String(i).padStart(7, '0')}`,
    title: `Note ${i}`,
    body: BODY,
    done: i % 2 === 0,
    n: i,
    tags: ['bench', i % 3 === 0 ? 'three' : 'other'],
  };
}

let seq = 0;
/** The outbox entry the non-Ferry engines store beside the record (Ferry keeps its own). */
export function makeEntry(rec) {
  seq += 1;
  return {
    seq,
    collection: 'notes',
    record_id: rec.id,
    op: 'create',
    base_version: 0,
    patch: rec,
    hlc: `${String(Date.now()).padStart(15, '0')}-${String(seq).padStart(10, '0')}-benchclient`,
  };
}

const nextTick = () => new Promise((r) => setTimeout(r, 0));

export function expose(adapter) {
  const B = {
    name: adapter.name,
    async open() {
      await adapter.open();
      return true;
    },
    // 1. one durable write at a time (record + outbox entry); per-write latencies.
    async writeOne({ warmup, n, tag = 'w1' }) {
      const lat = [];
      for (let i = 0; i < warmup + n; i++) {
        const rec = makeRecord(i, tag);
        const entry = makeEntry(rec);
        const t0 = performance.now();
        await adapter.writeOne(rec, entry);
        const dt = performance.now() - t0;
        if (i >= warmup) lat.push(dt);
      }
      return { lat };
    },
    // 2. n writes issued in the same tick, then Promise.all.
    async writeMany({ n, tag = 'wm' }) {
      const recs = [];
      const entries = [];
      for (let i = 0; i < n; i++) {
        const rec = makeRecord(i, tag);
        recs.push(rec);
        entries.push(makeEntry(rec));
      }
      await nextTick();
      const t0 = performance.now();
      if (adapter.writeMany) {
        await adapter.writeMany(recs, entries);
      } else {
        const ps = new Array(n);
        for (let i = 0; i < n; i++) ps[i] = adapter.writeOne(recs[i], entries[i]);
        await Promise.all(ps);
      }
      const ms = performance.now() - t0;
      const count = await adapter.count(tag);
      return { ms, count };
    },
    // 3 (preparation): store n records the engine's own bulk way (untimed).
    async seed({ n, tag = 'cs' }) {
      const recs = [];
      for (let i = 0; i < n; i++) recs.push(makeRecord(i, tag));
      await adapter.seed(recs);
      return { count: await adapter.count(tag) };
    },
    async count({ tag }) {
      return adapter.count(tag);
    },
  };
  if (adapter.extra) Object.assign(B, adapter.extra);
  window.B = B;
  return B;
}

/**
 * 3. Cold start: when the page was loaded with ?cold=1, open and read every record right
 * away, and publish the timings: `sincePage` counts from the page's first inline script (then
 * the bundle is fetched, parsed and run, wasm instantiated, the store opened and queried),
 * `sinceNav` from navigation start (adds the browser's own first-navigation costs, which are
 * noisy in a fresh browser), `inScript` from the first line of the page's own module.
 */
export async function coldStartIfAsked(adapter, scriptStart) {
  if (!new URLSearchParams(location.search).has('cold')) return false;
  try {
    await adapter.open();
    const rows = await adapter.readAll();
    const end = performance.now();
    window.COLD = { sinceNav: end, sincePage: end - (window.T0 ?? 0), inScript: end - scriptStart, rows: rows.length, marks: adapter.marks };
  } catch (e) {
    window.COLD = { error: String(e && e.stack ? e.stack : e) };
  }
  return true;
}
