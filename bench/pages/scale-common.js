// The in-page runners of the scale section (bench/lib/scale.mjs drives them). Each scale page
// builds an adapter
//   { name, open(), firstPage(), settled()?, watchPage(onRows), watchAll(onRows), put(rec), seed(recs),
//     count(), extra? }
// where `firstPage` resolves with the first 50 records ordered by `n`, `watchPage`/`watchAll`
// subscribe a live 50-row page / the whole list ordered by `n` (each returns an unsubscribe
// function), and `put` writes one record (durable when it resolves). Timing is taken in the
// page with performance.now(); cross-tab times use performance.timeOrigin + performance.now().

export const PAGE = 50;

const BODY =
  'Site visit notes: check the north wall for damp, photograph the meter, ask about the ' +
  'parking permit and confirm the next appointment by phone. Bring the ladder.';

/** The scale record (~300 bytes as JSON): the same fields in every engine and on the server. */
export function scaleFields(i) {
  return {
    title: `Note ${i}`,
    body: BODY,
    done: i % 2 === 0,
    n: i,
    owner: `user-${i % 97}`,
    tags: ['bench', i % 3 === 0 ? 'three' : 'other'],
  };
}

export function scaleRecord(i, tag = 's') {
  return { id: `${tag}-${String(i).padStart(7, '0')}`, ...scaleFields(i) };
}

let seq = 0;
/** The outbox entry the non-Ferry engines store beside each write (Ferry keeps its own). */
export function outboxEntry(rec) {
  seq += 1;
  return { seq, collection: 'notes', record_id: rec.id, op: 'create', base_version: 0, patch: rec, hlc: `${Date.now()}-${seq}-bench` };
}

const now = () => performance.timeOrigin + performance.now();

export function exposeScale(adapter) {
  let live = null; // the current live subscription of putToLive
  const watching = (watch) => {
    const state = { rows: null, waiters: [] };
    const unsub = watch((rows) => {
      state.rows = rows;
      const t = performance.now();
      state.waiters = state.waiters.filter((w) => !(w.pred(rows) && (w.resolve(t), true)));
    });
    state.unsub = unsub;
    state.until = (pred) =>
      new Promise((resolve) => {
        if (state.rows && pred(state.rows)) resolve(performance.now());
        else state.waiters.push({ pred, resolve });
      });
    return state;
  };

  const S = {
    name: adapter.name,
    async open() {
      await adapter.open();
      return true;
    },
    async seed({ from, to, tag = 's', chunk = 20000 }) {
      for (let start = from; start < to; start += chunk) {
        const recs = [];
        for (let i = start; i < Math.min(to, start + chunk); i++) recs.push(scaleRecord(i, tag));
        await adapter.seed(recs);
      }
      return { count: await adapter.count() };
    },
    async count() {
      return adapter.count();
    },
    // (b)/(c): put() a record that enters the first page (n below every stored n), and time
    // until the live query (a 50-row page, or the whole list) shows it; `max` and every sample.
    async putToLive({ kind, warmup, n, tag }) {
      const watch = kind === 'page' ? adapter.watchPage : adapter.watchAll;
      live = watching(watch);
      await live.until((rows) => rows.length > 0);
      const lat = [];
      const resolved = [];
      for (let i = 0; i < warmup + n; i++) {
        const rec = { ...scaleRecord(i, tag), n: -1_000_000_000 + nextFirstN() };
        const t0 = performance.now();
        const seen = live.until((rows) => rows.length > 0 && rows[0].id === rec.id);
        const p = adapter.put(rec);
        const [tSeen] = await Promise.all([seen, p]);
        const t1 = performance.now();
        if (i >= warmup) {
          lat.push(tSeen - t0);
          resolved.push(t1 - t0);
        }
      }
      live.unsub();
      live = null;
      return { lat, resolved };
    },
    // (f) leader side: commit `n` puts that enter the first page, one at a time; after each,
    // wait until the follower tab (through `window.__followerSaw`, polled by the driver) saw it.
    async leaderPut({ tag, i }) {
      const rec = { ...scaleRecord(i, tag), n: -1_000_000_000 + nextFirstN() };
      const t0 = now();
      await adapter.put(rec);
      return { id: rec.id, t0, committed: now() };
    },
    // (f) follower side: a live 50-row page; records when each awaited id first shows up.
    async follow() {
      const state = watching(adapter.watchPage);
      await state.until((rows) => rows.length > 0);
      window.__follow = state;
      return true;
    },
    async followerSaw({ id }) {
      const state = window.__follow;
      await state.until((rows) => rows.some((r) => r.id === id));
      return now();
    },
  };
  if (adapter.extra) Object.assign(S, adapter.extra);
  window.S = S;
  return S;
}

// Descending n for successive writes (of every tag): each new record sorts first.
let nextFirst = 1_000_000;
function nextFirstN() {
  nextFirst -= 1;
  return nextFirst;
}

/**
 * (a) First page from page load: when loaded with ?first=1, open and read the first 50 records
 * ordered by `n`, and publish `window.FIRST` with the time since navigation start.
 */
export async function firstPageIfAsked(adapter) {
  if (!new URLSearchParams(location.search).has('first')) return false;
  try {
    await adapter.open();
    const opened = performance.now();
    const rows = await adapter.firstPage();
    const end = performance.now();
    // An engine that answers before it has loaded everything (Ferry with waitForRecords:
    // false) is measured for memory once it has: the driver reads memory after FIRST.
    const settled = adapter.settled ? (await adapter.settled(), performance.now()) : null;
    window.FIRST = { sinceNav: end, openMs: opened, settledMs: settled, rows: rows.length, firstN: rows[0]?.n ?? null, lastN: rows.at(-1)?.n ?? null };
  } catch (e) {
    window.FIRST = { error: String(e && e.stack ? e.stack : e) };
  }
  return true;
}
