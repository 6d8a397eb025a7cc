// ferry-sync's page side of sync with the app closed (`Ferry.open({ backgroundSync })`).
//
// While writes wait in the outbox, the page registers the service worker's Background Sync
// tag, so the browser wakes the worker (`ferrySync` from `ferry-sync/sw`) once it is online
// again — even after the last tab closed. Where Periodic Background Sync is granted, the
// tag is registered for it too. Where neither exists (Firefox, Safari, or no service
// worker), the fallback is: flush when the page is hidden or left (`visibilitychange` to
// hidden, `pagehide`), and the next open syncs whatever still waits.

/** The tag the page registers and the worker listens for, unless the app names another. */
export const DEFAULT_SYNC_TAG = 'ferry-sync';

/** Reads `backgroundSync` of the open options: null (off) or `{ tag, periodicMinIntervalMs }`. */
export function backgroundOptions(value) {
  if (value === undefined || value === null || value === false) return null;
  const given = value === true ? {} : value;
  return {
    tag: typeof given.tag === 'string' && given.tag !== '' ? given.tag : DEFAULT_SYNC_TAG,
    periodicMinIntervalMs: Number.isFinite(given.periodicMinIntervalMs) ? given.periodicMinIntervalMs : null,
  };
}

async function registration() {
  const container = globalThis.navigator && navigator.serviceWorker;
  if (!container) return null;
  return (await container.getRegistration()) ?? null;
}

/**
 * Starts the page side for `ferry`; returns `{ status, stop }`. `status` says what the
 * browser offers: `pending` (not known yet), `sync` (Background Sync registered), `fallback`
 * (no Background Sync or no service worker: flush on hide and on the next open).
 */
export function watchBackground(ferry, options) {
  const state = { status: 'pending', registrations: 0, periodic: false, flushes: 0 };
  let wanted = false;
  let registering = false;

  const register = async () => {
    if (registering) return;
    registering = true;
    try {
      const reg = await registration();
      if (!reg || !reg.sync || typeof reg.sync.register !== 'function') {
        state.status = 'fallback';
        return;
      }
      await reg.sync.register(options.tag);
      state.status = 'sync';
      state.registrations += 1;
      if (options.periodicMinIntervalMs !== null && reg.periodicSync && !state.periodic) {
        const permission = await navigator.permissions
          ?.query({ name: 'periodic-background-sync' })
          .catch(() => null);
        if (permission && permission.state === 'granted') {
          await reg.periodicSync.register(options.tag, { minInterval: options.periodicMinIntervalMs });
          state.periodic = true;
        }
      }
    } catch {
      // Refused (no permission, a worker still installing): the fallback still holds.
      if (state.status === 'pending') state.status = 'fallback';
    } finally {
      registering = false;
    }
  };

  // Once per stretch of waiting writes: the tag stays registered until the worker ran it.
  const unsubscribe = ferry.syncState.subscribe((s) => {
    if (s.hasPendingWrites && !wanted) {
      wanted = true;
      register();
    } else if (!s.hasPendingWrites) {
      wanted = false;
    }
  });

  // The fallback, on every browser: a page being hidden or left may not come back.
  const flush = () => {
    if (!ferry.syncState.getSnapshot().hasPendingWrites) return;
    state.flushes += 1;
    ferry.syncNow();
  };
  const onVisibility = () => {
    if (globalThis.document && document.visibilityState === 'hidden') flush();
  };
  const target = globalThis.document ? globalThis : null;
  if (target) {
    globalThis.addEventListener('pagehide', flush);
    document.addEventListener('visibilitychange', onVisibility);
  } else if (state.status === 'pending') {
    state.status = 'fallback';
  }
  if (!globalThis.navigator || !navigator.serviceWorker) state.status = 'fallback';

  return {
    status: () => ({ ...state }),
    stop() {
      unsubscribe();
      if (target) {
        globalThis.removeEventListener('pagehide', flush);
        document.removeEventListener('visibilitychange', onVisibility);
      }
    },
  };
}
