// Type declarations of ferry-sync. Self-contained: they compile under `strict` with
// `lib: ["ES2022", "DOM"]` and `skipLibCheck: false`, and do not expose the wasm-bindgen
// module behind the API.
import type { EngineErrorCode } from './error-codes.js';

/** How a collection resolves concurrent edits. */
export type Policy = 'merge-fields' | 'last-writer-wins' | 'server-wins-review';

/** A value that can be stored. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A record of an untyped collection: a plain object with a string `id`. */
export interface FerryRecord {
  id: string;
  [field: string]: JsonValue | undefined;
}

/**
 * The constraint on a schema `S`, the record type of each collection, for
 * `Ferry.open<MySchema>()`: every record type has a string `id`. Interfaces work for both
 * the records and the schema: `interface Note { id: string; title: string }`,
 * `interface MySchema { notes: Note }`.
 */
export type SchemaOf<S> = { [C in keyof S]: { id: string } };

/** What `Ferry.open()` without a schema gives: every collection holds `FerryRecord`s. */
export type UntypedSchema = { [collection: string]: FerryRecord };

/** A collection's name in schema `S`. */
export type CollectionName<S> = keyof S & string;

/** How urgent a collection's writes are when the network is poor (default `normal`). */
export type CollectionPriority = 'critical' | 'normal' | 'background';

export interface CollectionOptions {
  policy?: Policy;
  /**
   * Fields, or compound fields, that queries read through: `['updatedAt', ['assignee', 'done']]`.
   * A query whose `where` has equalities (or `in`) on an index's leading fields and a range or
   * `prefix` on the next one, or whose `orderBy` is the next one, reads only the rows it returns.
   */
  indexes?: (string | string[])[];
  /**
   * Critical writes go out first; while the network is poor (failures, 429/503, slow round
   * trips, save-data or a metered link) background writes wait until no critical write does.
   */
  priority?: CollectionPriority;
}

export interface FerryOptions<S = UntypedSchema> {
  /** The local database's name (one per app and user). */
  name: string;
  /** The sync server's base URL, e.g. '/v1'. */
  url: string;
  /** The collections and their conflict policies. */
  collections: { [C in CollectionName<S>]: CollectionOptions };
  /**
   * Returns the bearer token; `refresh` is true after the server refused the last one.
   * A token that is not one word of visible ASCII (an HTML page, say) is not sent: the sync
   * state becomes `auth-required` with `lastError` saying why.
   */
  getToken?: (refresh: boolean) => Promise<string | null> | string | null;
  /** Encrypts record fields and outbox payloads at rest (32 raw bytes or an AES-GCM key). */
  encryptionKey?: Uint8Array | ArrayBuffer | CryptoKey;
  /**
   * `false`: resolve `open` before the stored records are read (default `true`: after).
   * Until `ferry.loaded` resolves, a query with a `limit` whose order a declared index yields
   * shows its first page read from that index (only the rows of the page are read); other
   * queries show their rows once loaded; writes wait for the load; `get`, `metrics` and
   * `inspect` throw a `FerryError` with code `loading`; the sync status is `loading`.
   */
  waitForRecords?: boolean;
  /** A fetch-compatible function to use instead of the global fetch. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Listen to the server's event stream for changes (default true); else poll. */
  live?: boolean;
  /** How long one request may take, in milliseconds (default 30000). */
  requestTimeoutMs?: number;
  /**
   * The version of the app's record shapes (a whole number; raise it when a release changes
   * them). At open, data stored at an older version goes through `migrate` once, in one
   * transaction with the new version; every push names it (`Ferry-Data-Version`). Data
   * stored by a newer version rejects the open with `data_too_new`.
   */
  version?: number;
  /**
   * Rewrites one stored record (its view, a pending write's result, a conflict's local side,
   * a dead letter's desired value) to the shape of `version`; synchronous. A throw rejects
   * the open with `migration_failed` and changes nothing.
   */
  migrate?: (record: FerryRecord, context: MigrationContext) => FerryRecord;
  /**
   * Sync with the app closed: registers the service worker's Background Sync tag while
   * writes wait (`true`: tag `ferry-sync`), Periodic Background Sync where the browser
   * granted it, and flushes on `pagehide`/hidden. The worker runs `ferrySync` from
   * `ferry-sync/sw`.
   */
  backgroundSync?: boolean | BackgroundSyncOptions;
}

/** What `Ferry.backgroundSync` reports. */
export interface BackgroundSyncStatus {
  /** `sync`: the worker's tag is registered; `fallback`: flush on hide and on the next open. */
  status: 'pending' | 'sync' | 'fallback';
  /** How often the tag was registered (once per stretch of waiting writes). */
  registrations: number;
  /** Whether Periodic Background Sync was registered. */
  periodic: boolean;
  /** How often the page flushed because it was hidden or left. */
  flushes: number;
}

/** What `migrate` is told about a record. */
export interface MigrationContext {
  collection: string;
  /** The stored data version. */
  from: number;
  /** The app's `version`. */
  to: number;
}

export interface BackgroundSyncOptions {
  /** The sync tag the service worker listens for (default `ferry-sync`). */
  tag?: string;
  /** Ask for Periodic Background Sync at this interval, where granted (default: not asked). */
  periodicMinIntervalMs?: number;
}

/** Which records a query returns and in what order. */
export interface QueryOptions<T = FerryRecord> {
  /**
   * Conditions every record must meet: a value (equality) or an operator object —
   * `{in: [...]}`, `{gt, gte, lt, lte}`, `{between: [low, high]}` (both included), `{prefix}`,
   * `{eq}`. Ranges match only values of the bound's kind (`{gt: 5}` never matches a string).
   */
  where?: { [K in keyof T]?: Condition<T[K]> };
  /** A field, or a field and a direction. */
  orderBy?: (keyof T & string) | [keyof T & string, 'asc' | 'desc'];
  limit?: number;
  /** The last row of the previous page: the rows after it in this query's order (keyset paging). */
  after?: T;
}

type RangeBound<V> = V extends number | string | boolean ? V : never;

/** A condition on one field of `QueryOptions.where`. */
export type Condition<V> =
  | V
  | { eq: V }
  | { in: V[] }
  | { gt?: RangeBound<V>; gte?: RangeBound<V>; lt?: RangeBound<V>; lte?: RangeBound<V> }
  | { between: [RangeBound<V>, RangeBound<V>] }
  | { prefix: V extends string ? string : never };

/** Fields to set with `patch` (`null` removes a field). */
export type Patch<T> = { [K in Exclude<keyof T, 'id'>]?: T[K] | null } & { id?: string };

export type SyncStatus = 'loading' | 'offline' | 'idle' | 'syncing' | 'backoff' | 'error' | 'auth-required';

export interface SyncState {
  status: SyncStatus;
  online: boolean;
  /** Local writes not yet acknowledged by the server (this tab's view of the outbox). */
  outboxDepth: number;
  inFlight: number;
  /** Whether some local write still waits for the server (`outboxDepth` or `inFlight` above 0). */
  hasPendingWrites: boolean;
  /**
   * Everything is synced: the last cycle succeeded (`idle`, online, at least one sync) and
   * no write waits. Show "synced" only when this is true.
   */
  synced: boolean;
  conflicts: number;
  deadLetters: number;
  lastSyncedAt: number | null;
  nextRetryAt: number | null;
  /** What went wrong last, in words (with `auth-required`: what was wrong with the token). */
  lastError: string | null;
  /** The kind of the last error when Ferry knows it, e.g. `protocol_error`. */
  errorCode: string | null;
  /** The last time the server was found to have lost history (restored or recreated). */
  rollback: { at: number; previousEpoch: string; epoch: string } | null;
  /** The last time the local database was lost under this tab and re-created. */
  storageLost: { at: number; reason: string } | null;
  /** The last time stored data was found inconsistent (a record row missing under its pending changes): rebuilt from them and resynced. */
  corruptData: { at: number; collection: string; id: string; detail: string } | null;
  isLeader: boolean;
  storage: { persisted: boolean; usage: number | null; quota: number | null };
  progress: { pulled: number; pullEstimate: number; pushed: number; pushTotal: number };
  /** Outbox entries waiting, per collection priority. */
  waiting: { critical: number; normal: number; background: number };
  /** Whether the network counts as poor (background writes then wait for critical ones). */
  degraded: boolean;
}

/** One thing the app should hear about, once it is durable. `seq` rises by one per outcome. */
export type Outcome = { seq: number; at: number } & (
  | { kind: 'merged'; entryId: string; collection: string; id: string }
  | { kind: 'conflicted'; entryId: string; conflictId: string }
  | { kind: 'dead-lettered'; entryId: string; letterId: string; code: string }
  | { kind: 'rollback-detected'; previousEpoch: string; epoch: string; cursor: number; head: number }
  | { kind: 'storage-lost'; reason: string }
  | { kind: 'corrupt-data'; collection: string; id: string; detail: string }
);

export interface FerryMetrics {
  syncSuccessRate: number | null;
  conflictRateByCollection: Record<string, number>;
  medianConvergeMs: number | null;
  retryDistribution: Record<string, number>;
  cyclesOk: number;
  cyclesFailed: number;
  outboxDepth: number;
  /** Whether the open used the rows read while the module loaded. */
  loadedEarly: boolean;
}

export interface Observer<T> {
  next(value: T): void;
  error?(error: unknown): void;
  complete?(): void;
}

/** Stops a subscription; also callable as `.unsubscribe()`. */
export interface Unsubscribe {
  (): void;
  unsubscribe(): void;
}

/** A live value: works with React (useSyncExternalStore), Svelte, Vue and RxJS `from()`. */
export interface Observable<T> {
  /** Calls `observer` at once with the current value and on every change. */
  subscribe(observer: ((value: T) => void) | Observer<T>): Unsubscribe;
  /** The current value; the same reference until it changes. */
  getSnapshot(): T;
  /** The interop point of RxJS `from()` (also under `Symbol.observable` where it exists). */
  '@@observable'(): Observable<T>;
}

/** An edit that needs a person: the local and the server version disagree. */
export interface Conflict<C extends string = string, T = FerryRecord> {
  readonly id: string;
  readonly collection: C;
  readonly recordId: string;
  readonly policy: Policy;
  readonly base: T | null;
  readonly local: T | null;
  readonly server: T | null;
  /** The fields both sides changed. */
  readonly fields: string[];
  readonly createdAt: number;
  /** Keeps 'local', takes 'server', or stores a merged record; resolves when durable. */
  resolve(choice: 'local' | 'server' | Patch<T>): Promise<void>;
}

/** A mutation the server refused for good. */
export interface DeadLetter<C extends string = string, T = FerryRecord> {
  readonly id: string;
  readonly collection: C;
  readonly recordId: string;
  /** The server's error code (for example `validation_failed`). */
  readonly code: string;
  readonly message: string;
  readonly desired: T | null;
  readonly failedAt: number;
  /** Sends it again, as it was or as `edited`; resolves when durable. */
  retry(edited?: Patch<T>): Promise<void>;
  /** Drops it; the record stays as the server has it. */
  discard(): Promise<void>;
}

/** A conflict of any collection of `S` (narrow it by `collection`). */
export type AnyConflict<S> = { [C in CollectionName<S>]: Conflict<C, S[C]> }[CollectionName<S>];
/** A dead letter of any collection of `S` (narrow it by `collection`). */
export type AnyDeadLetter<S> = { [C in CollectionName<S>]: DeadLetter<C, S[C]> }[CollectionName<S>];

/** One outbox entry as `inspect()` shows it. */
export interface InspectedOutboxEntry {
  entryId: string;
  collection: string;
  recordId: string;
  op: 'create' | 'update' | 'delete';
  /** `queued`: not sent yet (may still absorb writes); `sent`: frozen, waiting for the server's answer. */
  state: 'queued' | 'sent';
  opId: string | null;
  seq: number | null;
  baseVersion: number | null;
  /** Pushes that carried it without a final answer. */
  attempts: number;
  /** Local writes folded into it. */
  writes: number;
  lastError: string | null;
  createdAt: number;
  fields: string[];
}

/** One sync cycle, seen from its requests (grouped by the W3C trace id they carried). */
export interface InspectedCycle {
  traceId: string;
  startedAt: number;
  ok: boolean;
  requests: { method: string; url: string; startedAt: number; status: number | null; error: string | null; ms: number | null }[];
}

/** What `ferry.inspect()` returns: plain JSON for support. */
export interface FerryInspection {
  at: number;
  clientId: string;
  cursor: number;
  nextSeq: number;
  resyncing: boolean;
  lastSyncedAt: number | null;
  isLeader: boolean;
  outbox: InspectedOutboxEntry[];
  conflicts: { conflictId: string; collection: string; recordId: string; policy: Policy; fields: string[]; serverVersion: number; createdAt: number }[];
  deadLetters: { letterId: string; opId: string; collection: string; recordId: string; op: string; code: string; message: string; attempts: number; failedAt: number }[];
  /** Conflicts this handle saw: when, when they left the inbox, and how this tab resolved them. */
  conflictHistory: { conflictId: string; collection: string; recordId: string; policy: Policy; fields: string[]; seenAt: number; resolvedAt: number | null; resolution: 'local' | 'server' | 'merged' | null }[];
  syncState: SyncState;
  metrics: FerryMetrics;
  /** The last 20 sync cycles, oldest first. */
  cycles: InspectedCycle[];
}

/** Every `code` a FerryError can have. */
export type FerryErrorCode = EngineErrorCode | 'wasm_load_failed' | 'unsupported_environment';

/** Every code, at run time. */
export declare const FERRY_ERROR_CODES: readonly FerryErrorCode[];

/** Every error Ferry throws or rejects with. `instanceof FerryError` works for all of them. */
export declare class FerryError extends Error {
  constructor(code: FerryErrorCode, message: string, options?: { cause?: unknown });
  readonly code: FerryErrorCode;
}

/** Whether `value` is a FerryError (with `code`, when given). */
export declare function isFerryError<K extends FerryErrorCode>(value: unknown, code?: K): value is FerryError & { code: K };

/**
 * Loads the WebAssembly module once (Ferry.open does it for you). `input` is where the
 * `.wasm` file is, when a bundler does not resolve it from `import.meta.url`. A failed load
 * rejects with code `wasm_load_failed` and is retried by the next call.
 */
export declare function init(input?: string | URL | Request | Response | BufferSource | WebAssembly.Module): Promise<void>;

/** An open Ferry database; `S` gives each collection its record type. */
export declare class Ferry<S extends SchemaOf<S> = UntypedSchema> {
  private constructor();
  /**
   * Opens (or creates) the local database and starts syncing. Give a schema to type the
   * records: `Ferry.open<{ notes: Note }>({...})`.
   */
  static open<S extends SchemaOf<S> = UntypedSchema>(options: FerryOptions<S>): Promise<Ferry<S>>;
  /** Creates or replaces a record; visible now, resolves when durable. */
  put<C extends CollectionName<S>>(collection: C, record: S[C]): Promise<void>;
  /** Sets some fields of an existing record (`null` removes a field). */
  patch<C extends CollectionName<S>>(collection: C, id: string, fields: Patch<S[C]>): Promise<void>;
  /** Deletes a record. */
  delete<C extends CollectionName<S>>(collection: C, id: string): Promise<void>;
  /** The record as it is now, or `undefined`. */
  get<C extends CollectionName<S>>(collection: C, id: string): S[C] | undefined;
  /** A live list of records. */
  query<C extends CollectionName<S>>(collection: C, options?: QueryOptions<S[C]>): Observable<S[C][]>;
  /** The sync status (the same object on every access). */
  readonly syncState: Observable<SyncState>;
  /** The conflict inbox (the same object on every access). */
  readonly conflicts: Observable<AnyConflict<S>[]>;
  /** The mutations the server refused for good (the same object on every access). */
  readonly deadLetters: Observable<AnyDeadLetter<S>[]>;
  /** Merges, conflicts, dead letters, rollbacks and lost storage: the newest 100 (the same object on every access). */
  readonly outcomes: Observable<Outcome[]>;
  /** Whether this tab runs the network loop. */
  readonly isLeader: boolean;
  /** Sync with the app closed as this page sees it; `null` without the `backgroundSync` option. */
  readonly backgroundSync: BackgroundSyncStatus | null;
  /** Sync health figures. */
  metrics(): FerryMetrics;
  /** A support dump: outbox, conflicts and their history, dead letters, cursor, leader, recent cycles. */
  inspect(): FerryInspection;
  /** Syncs as soon as possible (the leader tab does the work). */
  syncNow(): void;
  /** Finishes pending writes, gives up leadership and closes the database. */
  close(): Promise<void>;
  /** Resolves once the records are loaded (at once unless opened with `waitForRecords: false`). */
  readonly loaded: Promise<void>;
}
