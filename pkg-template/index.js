// ferry-sync entry point: the public `Ferry` class, `FerryError` and `init`, over the
// wasm-bindgen module (ferry.js), which is loaded on first use and never exported as such.
//
// This layer owns what is about JS habits rather than sync: every Promise-returning method
// rejects instead of throwing, errors are `FerryError`s, a failed WebAssembly load can be
// retried, the `syncState`/`conflicts`/`deadLetters` getters return one object each, the
// sync state says plainly whether everything is synced, and a bad token from `getToken`
// shows as `auth-required` with a message saying what was wrong with it.
import initWasm, { Ferry as WasmFerry } from './ferry.js';
import { earlyOpen, openForReading } from './early-open.js';
import { backgroundOptions, watchBackground } from './background.js';
import { FerryError, asFerryError, rejecting, throwing } from './errors.js';
import { LateObservable, MappedObservable, loadingSyncState } from './observables.js';
import { ConflictHistory, SyncLog } from './support-log.js';

export { FERRY_ERROR_CODES, FerryError, isFerryError } from './errors.js';


let loading;

function loadFailure(cause) {
  const detail = cause && cause.message ? cause.message : String(cause);
  // "found 3c 21 64 6f" is "<!do": an HTML page came back where the .wasm file should be.
  const hint = /3c 21|magic word/i.test(detail)
    ? ' The server answered with something that is not the .wasm file (an HTML page?). With a Vite 5-7 dev server add `optimizeDeps: { exclude: ["ferry-sync"] }` to vite.config; otherwise make ferry_bg.wasm reachable next to the bundle or pass its URL to init().'
    : '';
  return new FerryError(
    'wasm_load_failed',
    `Ferry could not load its WebAssembly module: ${detail}.${hint} Calling Ferry.open() or init() again retries.`,
    { cause },
  );
}

/**
 * Loads the WebAssembly module once (Ferry.open does it for you). A failed load is not
 * remembered: the next call tries again.
 */
export function init(input) {
  loading ??= initWasm(input === undefined ? undefined : { module_or_path: input }).then(
    () => undefined,
    (cause) => {
      loading = undefined;
      throw loadFailure(cause);
    },
  );
  return loading;
}

// Where Ferry.open finds the early read (src/client/early.rs).
const EARLY_OPEN = Symbol.for('ferry.earlyOpen');
// Only Ferry.open makes Ferry objects.
const CONSTRUCT = Symbol('Ferry.open');

/** Why `token` cannot be sent as a bearer token, or null when it can. */
function tokenProblem(token) {
  if (typeof token !== 'string') {
    return `getToken must resolve to a string or null, but gave ${token === null ? 'null' : typeof token}`;
  }
  // RFC 6750 tokens are one word of visible ASCII; anything else makes fetch() throw
  // ("Invalid value") before a request is even sent.
  if (token.length === 0 || /[^\x21-\x7e]/.test(token)) {
    const start = JSON.stringify(token.slice(0, 40)) + (token.length > 40 ? '...' : '');
    return (
      `getToken returned ${start}, which is not a bearer token (one word of visible ASCII). ` +
      'If it came from fetch(), check the URL and the answer: an HTML page is not a token; ' +
      'ferry-server --demo answers POST /v1/demo/token with {"token": "..."}.'
    );
  }
  return null;
}

/** Wraps the app's getToken so a bad token, or a failing callback, is named in lastError. */
function checkedTokens(getToken, problem) {
  return async (refresh) => {
    let token;
    try {
      token = await getToken(refresh);
    } catch (e) {
      problem.message = `getToken(${refresh}) failed: ${e && e.message ? e.message : String(e)}`;
      throw e;
    }
    if (token === null || token === undefined) {
      problem.message = null;
      return null;
    }
    const why = tokenProblem(token);
    problem.message = why;
    if (why) throw new FerryError('invalid_options', why);
    return token;
  };
}

/** The engine's sync state plus what a badge needs to say "synced" honestly. */
function summarise(state, problem) {
  const hasPendingWrites = state.outboxDepth > 0 || state.inFlight > 0;
  const out = {
    ...state,
    hasPendingWrites,
    synced: state.status === 'idle' && state.online && !hasPendingWrites && state.lastSyncedAt !== null,
  };
  if (state.status === 'auth-required' && problem.message) out.lastError = problem.message;
  return out;
}

/** An open Ferry database. */
export class Ferry {
  #inner;
  #problem;
  #syncState;
  #conflicts;
  #deadLetters;
  #outcomes;
  #log;
  #history = new ConflictHistory();
  #background = null;
  // With `waitForRecords: false`: the engine opening behind `open`, the options it was
  // given, and a connection for first pages (null: no database yet). Null once open.
  #loading = null;
  #loaded;

  /** Use `Ferry.open()`. */
  constructor(key, inner, problem, log, loading = null) {
    if (key !== CONSTRUCT) throw new TypeError('use `await Ferry.open(options)` to open a Ferry database');
    this.#inner = inner;
    this.#problem = problem;
    this.#log = log;
    this.#loading = loading;
    this.#loaded = loading
      ? loading.opening.then((engine) => {
          this.#inner = engine;
          this.#loading = null;
          loading.db.then((found) => found && found.db.close());
        })
      : Promise.resolve();
    // Unhandled only if the app never looks: the reason stays in `loaded` and every call.
    this.#loaded.catch(() => {});
    this.conflicts.subscribe((list) => this.#history.observe(list));
  }

  /**
   * Resolves once the records are loaded and every method answers (at once, unless the
   * database was opened with `waitForRecords: false`); rejects with the reason the engine
   * could not open.
   */
  get loaded() {
    return this.#loaded;
  }

  /** The engine's observable `pick(engine)`, or one that follows it once the engine is open. */
  #observable(pick, initial) {
    if (this.#inner) return pick(this.#inner);
    return new LateObservable(initial, this.#loading.opening.then(pick));
  }

  /** Runs `call(engine)` now, or once the engine is open (a Promise-returning call). */
  #later(call) {
    if (this.#inner) return rejecting(() => call(this.#inner));
    return this.#loading.opening.then((engine) => rejecting(() => call(engine))).catch((e) => Promise.reject(asFerryError(e)));
  }

  /** Throws while the records load (for calls that answer from them synchronously). */
  #engineNow(what) {
    if (this.#inner) return this.#inner;
    throw asFerryError(WasmFerry.loadingError(what));
  }

  /** Opens (or creates) the local database and starts syncing. */
  static async open(options) {
    if (typeof globalThis.indexedDB === 'undefined') {
      throw new FerryError(
        'unsupported_environment',
        'Ferry.open: IndexedDB is missing here (globalThis.indexedDB is undefined). Ferry keeps its data in IndexedDB, ' +
          'so it opens in a browser window or worker; in Node (tests, server-side rendering) importing ferry-sync works ' +
          'but opening a database does not.',
      );
    }
    const problem = { message: null };
    const given = options && typeof options === 'object' ? options : null;
    const overrides = {};
    const log = new SyncLog();
    // A `fetch` that is not a function is left for the engine to refuse (invalid_options).
    const fetchGiven = given ? given.fetch : undefined;
    if (given && (fetchGiven === undefined || fetchGiven === null || typeof fetchGiven === 'function')) {
      overrides.fetch = log.wrap(typeof fetchGiven === 'function' ? fetchGiven : null);
    }
    if (given && typeof given.getToken === 'function') overrides.getToken = checkedTokens(given.getToken, problem);
    // Read the database while the module loads: `earlyOpen` takes the leader lock if it is
    // free and reads every row, and the engine carries on from there (it checks the schema
    // version, and opens the usual way when the read found nothing it can use).
    const name = given ? given.name : undefined;
    // With `waitForRecords: false` the engine's load starts only after the app's first
    // queries have issued their index reads (a task later), and without the early read:
    // IndexedDB serves transactions in order, and a read queued behind the whole load's
    // waits for it.
    const deferEngine = given && given.waitForRecords === false;
    const early = !deferEngine && typeof name === 'string' && name !== '' ? earlyOpen(name, `ferry:${name}:leader`) : null;
    if (early) overrides[EARLY_OPEN] = early;
    // With `waitForRecords: false`, a connection for first pages, opened now (see loading below).
    const reading = deferEngine && typeof name === 'string' && name !== '' ? openForReading(name) : null;
    const released = () => {
      // An open that failed before taking the lock over must not keep it from other tabs.
      if (early) {
        early.then((found) => {
          if (found.release) found.release();
          if (found.channel) found.channel.close();
        });
      }
    };
    try {
      await init();
      // The caller's object stays untouched: its other fields are read through the prototype.
      const engineOptions = given ? Object.assign(Object.create(given), overrides) : options;
      let ferry;
      if (given && given.waitForRecords === false) {
        // Resolve now; the engine opens behind (see LateObservable). Bad options still throw here.
        WasmFerry.checkOptions(engineOptions);
        await reading;
        const opening = new Promise((resolve) => setTimeout(resolve, 0))
          .then(() => WasmFerry.open(engineOptions))
          .catch((e) => {
            released();
            throw asFerryError(e);
          });
        const db = reading ?? Promise.resolve(null);
        ferry = new Ferry(CONSTRUCT, null, problem, log, { opening, options: engineOptions, db });
      } else {
        ferry = new Ferry(CONSTRUCT, await WasmFerry.open(engineOptions), problem, log);
      }
      const background = backgroundOptions(given ? given.backgroundSync : undefined);
      if (background) ferry.#background = watchBackground(ferry, background);
      return ferry;
    } catch (e) {
      released();
      if (reading) reading.then((found) => found && found.db.close());
      throw asFerryError(e);
    }
  }

  /** Creates or replaces a record; visible now, resolves when durable. */
  put(collection, record) {
    return this.#later((engine) => engine.put(collection, record));
  }

  /** Sets some fields of an existing record (`null` removes a field). */
  patch(collection, id, fields) {
    return this.#later((engine) => engine.patch(collection, id, fields));
  }

  /** Deletes a record. */
  delete(collection, id) {
    return this.#later((engine) => engine.delete(collection, id));
  }

  /** The record as it is now, or `undefined`. */
  get(collection, id) {
    return throwing(() => this.#engineNow('get()').get(collection, id));
  }

  /**
   * A live list of records. While the records load, a query a declared index answers in
   * order with a `limit` shows its first page read from the index; any other shows its
   * rows once the records are loaded.
   */
  query(collection, options) {
    if (this.#inner) return throwing(() => this.#inner.query(collection, options));
    const loading = this.#loading;
    const plan = throwing(() => WasmFerry.planFirstPage(loading.options, collection, options));
    const late = new LateObservable([], loading.opening.then((engine) => engine.query(collection, options)));
    if (plan) {
      loading.db
        .then((found) => (found && this.#loading ? plan.read(found.db, found.signature) : undefined))
        .then((rows) => rows && late.set(rows))
        // A first page that cannot be read leaves the query to the engine's answer.
        .catch(() => {})
        .finally(() => plan.free());
    }
    return late;
  }

  /** The sync state, as an observable (the same object on every access). */
  get syncState() {
    this.#syncState ??= new MappedObservable(
      this.#observable((engine) => engine.syncState, loadingSyncState()),
      (s) => summarise(s, this.#problem),
    );
    return this.#syncState;
  }

  /** The conflict inbox, as an observable (the same object on every access). */
  get conflicts() {
    if (!this.#conflicts) {
      const history = this.#history;
      // Each conflict's resolve() notes the choice in the history (the list stays the engine's).
      this.#conflicts = new MappedObservable(this.#observable((engine) => engine.conflicts, []), (list) => {
        for (const c of list) {
          if (!Object.hasOwn(c, 'resolve')) {
            const resolve = c.resolve.bind(c);
            Object.defineProperty(c, 'resolve', { value: (choice) => (history.resolving(c.id, choice), resolve(choice)) });
          }
        }
        return list;
      });
    }
    return this.#conflicts;
  }

  /** The dead letters, as an observable (the same object on every access). */
  get deadLetters() {
    this.#deadLetters ??= this.#observable((engine) => engine.deadLetters, []);
    return this.#deadLetters;
  }

  /**
   * What the app should hear about once it is durable — merges, conflicts, dead letters, a
   * server that lost history, a database lost under the tab — as an observable of the newest
   * 100 outcomes, each with a rising `seq` (the same object on every access).
   */
  get outcomes() {
    this.#outcomes ??= this.#observable((engine) => engine.outcomes, []);
    return this.#outcomes;
  }

  /** Whether this tab runs the network loop. */
  get isLeader() {
    return this.#inner ? this.#inner.isLeader : false;
  }

  /** Sync health figures. */
  metrics() {
    return this.#engineNow('metrics()').metrics();
  }

  /**
   * Everything support needs, as plain JSON: the outbox entry by entry (state, attempts,
   * last error), conflicts and the history of those this handle saw, dead letters, the
   * cursor, whether this tab leads, the sync state and metrics, and the recent sync cycles
   * with their trace ids. `ferry-sync/devtools` shows it as a panel.
   */
  inspect() {
    return {
      at: Date.now(),
      ...this.#engineNow('inspect()').inspectEngine(),
      syncState: this.syncState.getSnapshot(),
      metrics: this.metrics(),
      conflictHistory: this.#history.list(),
      cycles: this.#log.cycles(),
    };
  }

  /** Syncs as soon as possible (the leader tab does the work). */
  syncNow() {
    if (this.#inner) this.#inner.syncNow();
    else this.#loading.opening.then((engine) => engine.syncNow(), () => {});
  }

  /**
   * Sync with the app closed, as this page sees it (`null` without `backgroundSync`):
   * `status` is `sync` (the worker's tag is registered), `fallback` (no Background Sync or
   * no service worker: flush on hide, then on the next open) or `pending`.
   */
  get backgroundSync() {
    return this.#background ? this.#background.status() : null;
  }

  /** Finishes pending writes, gives up leadership and closes the database. */
  close() {
    this.#background?.stop();
    this.#background = null;
    // An engine that never opened (its reason is in `loaded`) has nothing to close.
    if (!this.#inner && this.#loading) return this.#loading.opening.then((engine) => engine.close(), () => undefined);
    return rejecting(() => this.#inner.close());
  }
}
