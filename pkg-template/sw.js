// ferry-sync/sw: Ferry's push from the app's own service worker, so writes left in the outbox
// reach the server after the last tab closed.
//
//   // sw.js, registered with { type: 'module' }
//   import { ferrySync } from 'ferry-sync/sw';
//   ferrySync({ name: 'my-app', url: '/v1', collections: { notes: {} }, getToken });
//
// On the `sync` event of the tag (and `periodicsync` where granted) the worker opens the same
// IndexedDB database with the same engine and takes part in the same Web Locks leadership as
// the tabs: if no tab leads, the worker takes the lock and pushes; if a tab leads, the tab
// pushes and the worker only waits to see the outbox empty. Either way exactly one writer
// freezes and sends each entry, and a retry of a frozen entry is byte-for-byte the first
// attempt, which the server applies once (ARCHITECTURE.md, "Sync with the app closed").
import { Ferry } from './index.js';
import { DEFAULT_SYNC_TAG } from './background.js';

export { DEFAULT_SYNC_TAG };

/** How long one wake-up may wait for the outbox to empty (browsers end events after minutes). */
const DEFAULT_FLUSH_TIMEOUT_MS = 60_000;

/**
 * Opens Ferry with `options` (as `Ferry.open` takes them), waits until no write waits, and
 * closes it. Rejects — so the browser schedules the sync again — when the network or the
 * server is not there, the token is refused, or the outbox did not empty in time.
 */
export async function flushOutbox(options, { timeoutMs = DEFAULT_FLUSH_TIMEOUT_MS } = {}) {
  // Polling instead of the event stream: the worker lives only as long as the event.
  const ferry = await Ferry.open({ ...options, live: false });
  try {
    await new Promise((resolve, reject) => {
      let unsubscribe = () => {};
      let settled = false;
      const finish = (error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        queueMicrotask(() => unsubscribe());
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(
        () => finish(new Error(`ferry-sync/sw: the outbox did not empty within ${timeoutMs} ms`)),
        timeoutMs,
      );
      unsubscribe = ferry.syncState.subscribe((s) => {
        if (!s.hasPendingWrites) finish();
        else if (s.status === 'offline' || s.status === 'error' || s.status === 'auth-required') {
          finish(new Error(`ferry-sync/sw: writes still wait (${s.status}${s.lastError ? `: ${s.lastError}` : ''})`));
        }
      });
      if (!settled) ferry.syncNow();
    });
  } finally {
    await ferry.close();
  }
}

/**
 * Listens in the service worker for the Background Sync tag (and Periodic Background Sync)
 * and flushes Ferry's outbox when it fires. Call once, at the top level of the worker.
 *
 * `options` are `Ferry.open`'s, plus `tag` and `flushTimeoutMs`; or a function that returns
 * them (or a Promise of them) at each wake-up — for what the worker only learns at run time,
 * like who is signed in — and may return null when there is nothing to flush for. Returns
 * `{ tag, flush }`; `flush()` runs one flush now (from a `message` handler, say).
 */
export function ferrySync(options, { tag: givenTag, flushTimeoutMs: givenTimeout } = {}) {
  const fixed = typeof options === 'function' ? null : (options ?? {});
  const tag = givenTag ?? fixed?.tag ?? DEFAULT_SYNC_TAG;
  const flushTimeoutMs = givenTimeout ?? fixed?.flushTimeoutMs;
  if (typeof self === 'undefined' || typeof self.addEventListener !== 'function') {
    throw new TypeError('ferrySync runs in a service worker (self.addEventListener is missing)');
  }
  const resolveOptions = async () => {
    const given = fixed ?? (await options());
    if (!given) return null;
    const { tag: _tag, flushTimeoutMs: _timeout, ...open } = given;
    return open;
  };
  // Wake-ups that overlap share one flush: one engine per worker at a time.
  let running = null;
  const flush = () => {
    running ??= resolveOptions()
      .then((open) => open && flushOutbox(open, { timeoutMs: flushTimeoutMs }))
      .finally(() => {
        running = null;
      });
    return running;
  };
  const onSync = (event) => {
    if (event.tag === tag) event.waitUntil(flush());
  };
  self.addEventListener('sync', onSync);
  self.addEventListener('periodicsync', onSync);
  return { tag, flush };
}
