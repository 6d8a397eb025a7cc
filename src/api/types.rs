//! TypeScript declarations shared by the JS classes: the options, the records, the sync
//! state, the observable contract and the error codes. wasm-bindgen appends them to the
//! generated `.d.ts`; the methods refer to them through `unchecked_*_type`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** How a collection resolves concurrent edits. */
export type Policy = 'merge-fields' | 'last-writer-wins' | 'server-wins-review';

/** A value that can be stored. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A record: a plain object with a string `id`. */
export interface FerryRecord {
  id: string;
  [field: string]: JsonValue | undefined;
}

export interface CollectionOptions {
  policy?: Policy;
  /** Fields (or compound fields) queries read through, e.g. ['updatedAt', ['assignee', 'done']]. */
  indexes?: (string | string[])[];
}

/** A condition on one field of `QueryOptions.where`. */
export type Condition =
  | JsonValue
  | { eq: JsonValue }
  | { in: JsonValue[] }
  | { gt?: number | string | boolean; gte?: number | string | boolean; lt?: number | string | boolean; lte?: number | string | boolean }
  | { between: [number | string | boolean, number | string | boolean] }
  | { prefix: string };

export interface FerryOptions {
  /** The local database's name (one per app and user). */
  name: string;
  /** The sync server's base URL, e.g. '/v1'. */
  url: string;
  /** The collections and their conflict policies. */
  collections: Record<string, CollectionOptions>;
  /** Returns the bearer token; `refresh` is true after the server refused the last one. */
  getToken?: (refresh: boolean) => Promise<string | null> | string | null;
  /** Encrypts record fields and outbox payloads at rest (32 raw bytes or an AES-GCM key). */
  encryptionKey?: Uint8Array | ArrayBuffer | CryptoKey;
  /** A fetch-compatible function to use instead of the global fetch. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Listen to the server's event stream for changes (default true); else poll. */
  live?: boolean;
  /** How long one request may take, in milliseconds (default 30000). */
  requestTimeoutMs?: number;
}

export interface QueryOptions {
  /** Conditions every record must meet: a value (equality) or an operator object. */
  where?: { [field: string]: Condition };
  /** A field, or a field and a direction. */
  orderBy?: string | [string, 'asc' | 'desc'];
  limit?: number;
  /** The last row of the previous page: the rows after it in this query's order. */
  after?: FerryRecord;
}

export type SyncStatus = 'offline' | 'idle' | 'syncing' | 'backoff' | 'error' | 'auth-required';

export interface SyncState {
  status: SyncStatus;
  online: boolean;
  outboxDepth: number;
  inFlight: number;
  conflicts: number;
  deadLetters: number;
  lastSyncedAt: number | null;
  nextRetryAt: number | null;
  lastError: string | null;
  /** A typed reason for `lastError` when there is one (e.g. `protocol_error`). */
  errorCode: string | null;
  /** The last time the server was found to have lost history this device held. */
  rollback: { at: number; previousEpoch: string; epoch: string } | null;
  /** The last time the local database was lost under this tab and re-created from memory. */
  storageLost: { at: number; reason: string } | null;
  isLeader: boolean;
  storage: { persisted: boolean; usage: number | null; quota: number | null };
  progress: { pulled: number; pullEstimate: number; pushed: number; pushTotal: number };
}

/** Something the app should hear about, once it is durable; `seq` rises by one per outcome. */
export type Outcome = { seq: number; at: number } & (
  | { kind: 'merged'; entryId: string; collection: string; id: string }
  | { kind: 'conflicted'; entryId: string; conflictId: string }
  | { kind: 'dead-lettered'; entryId: string; letterId: string; code: string }
  | { kind: 'rollback-detected'; previousEpoch: string; epoch: string; cursor: number; head: number }
  | { kind: 'storage-lost'; reason: string }
);

export interface FerryMetrics {
  syncSuccessRate: number | null;
  conflictRateByCollection: Record<string, number>;
  medianConvergeMs: number | null;
  retryDistribution: Record<string, number>;
  cyclesOk: number;
  cyclesFailed: number;
  outboxDepth: number;
}

/** How to resolve a conflict: keep the local version, take the server's, or a merged record. */
export type ConflictChoice = 'local' | 'server' | FerryRecord | { [field: string]: JsonValue };

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

declare global {
  interface SymbolConstructor {
    readonly observable: symbol;
  }
}

/** A live value: works with React (useSyncExternalStore), Svelte, Vue and RxJS `from()`. */
export class Observable<T> {
  private constructor();
  /** Calls `observer` at once with the current value and on every change. */
  subscribe(observer: ((value: T) => void) | Observer<T>): Unsubscribe;
  /** The current value; the same reference until it changes. */
  getSnapshot(): T;
  [Symbol.observable](): Observable<T>;
  free(): void;
}

export type FerryErrorCode =
  | 'unknown_collection' | 'invalid_record' | 'invalid_id' | 'not_found' | 'storage_failed'
  | 'quota_exceeded' | 'corrupt_data' | 'unknown_conflict' | 'unknown_dead_letter' | 'closed'
  | 'invalid_options' | 'invalid_argument' | 'storage_lost';

/** Every error Ferry throws or rejects with. */
export interface FerryError extends Error {
  code: FerryErrorCode;
}
"#;
