// ferry-sync's observables that are not the engine's own: a mapped view of one (the sync
// state with `synced`, the conflicts with their history) and one that follows the engine's
// once the engine has opened behind `Ferry.open` (`waitForRecords: false`).
import { FerryError, throwing } from './errors.js';

/** An observable whose values are `map(value)` of a source observable's (same references while the source's stay). */
export class MappedObservable {
  #source;
  #map;
  #lastIn = {};
  #lastOut;

  constructor(source, map) {
    this.#source = source;
    this.#map = map;
    this['@@observable'] = () => this;
  }

  #mapped(value) {
    if (value !== this.#lastIn) {
      this.#lastIn = value;
      this.#lastOut = this.#map(value);
    }
    return this.#lastOut;
  }

  subscribe(observer) {
    const next = typeof observer === 'function' ? observer : observer && observer.next;
    if (typeof next !== 'function') {
      throw new FerryError('invalid_argument', 'subscribe needs a function or an object with next()');
    }
    return throwing(() => this.#source.subscribe((value) => next.call(observer, this.#mapped(value))));
  }

  getSnapshot() {
    return this.#mapped(this.#source.getSnapshot());
  }

  [Symbol.observable ?? '@@observable']() {
    return this;
  }
}

// `Ferry.open({ waitForRecords: false })`: the engine reads every stored record before it
// answers anything, and with 100,000 records that read alone takes seconds. With this option
// the entry resolves `open` once the options are checked and the module is ready, and the
// engine opens behind it. Until it has (`ferry.loaded`), a query whose rows a declared index
// yields in order with a `limit` is answered once from the stored index keys (only the rows
// of its page are read: src/api/first_page.rs), and every observable switches to the
// engine's own once it is open.

/**
 * An observable whose values come from `source` (a promise of an engine observable) once it
 * is there; until then `getSnapshot()` is `initial` or the value given to `set`.
 */
export class LateObservable {
  #source = null;
  #value;
  #given = false;
  #waiting = new Set();

  constructor(initial, source, given = false) {
    this.#value = initial;
    this.#given = given;
    this['@@observable'] = () => this;
    source.then(
      (s) => {
        this.#source = s;
        for (const entry of this.#waiting) entry.attach();
        this.#waiting.clear();
      },
      // The open failed: `ferry.loaded` rejects with the reason; the value stays as it was.
      () => {},
    );
  }

  /** A value before the source is there (ignored after). */
  set(value) {
    if (this.#source) return;
    this.#value = value;
    this.#given = true;
    for (const entry of this.#waiting) entry.next(value);
  }

  subscribe(observer) {
    const next = typeof observer === 'function' ? observer : observer && observer.next;
    if (typeof next !== 'function') {
      throw new FerryError('invalid_argument', 'subscribe needs a function or an object with next()');
    }
    const entry = {
      inner: null,
      closed: false,
      next: (value) => next.call(observer, value),
      attach: () => {
        if (!entry.closed) entry.inner = this.#source.subscribe(observer);
      },
    };
    if (this.#source) {
      entry.attach();
    } else {
      this.#waiting.add(entry);
      // As the engine's observables do, a subscriber hears the current value at once — once
      // there is one beyond the placeholder (an empty list is not a first page).
      if (this.#given) entry.next(this.#value);
    }
    const unsubscribe = () => {
      entry.closed = true;
      this.#waiting.delete(entry);
      if (entry.inner) entry.inner();
    };
    unsubscribe.unsubscribe = unsubscribe;
    return unsubscribe;
  }

  /** Frees the engine's observable once there (see "Lifetime" in the README). */
  free() {
    this.#source?.free?.();
  }

  getSnapshot() {
    return this.#source ? this.#source.getSnapshot() : this.#value;
  }

  [Symbol.observable ?? '@@observable']() {
    return this;
  }
}

/** What the sync state says while the engine opens behind `Ferry.open`. */
export function loadingSyncState() {
  return {
    status: 'loading',
    online: globalThis.navigator ? navigator.onLine !== false : true,
    outboxDepth: 0,
    inFlight: 0,
    conflicts: 0,
    deadLetters: 0,
    lastSyncedAt: null,
    nextRetryAt: null,
    lastError: null,
    errorCode: null,
    rollback: null,
    storageLost: null,
    corruptData: null,
    isLeader: false,
    storage: { persisted: false, usage: null, quota: null },
    progress: { pulled: 0, pullEstimate: 0, pushed: 0, pushTotal: 0 },
    waiting: { critical: 0, normal: 0, background: 0 },
    degraded: false,
  };
}

