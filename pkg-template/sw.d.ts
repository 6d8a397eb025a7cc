// Type declarations of ferry-sync/sw: Ferry's push from the app's service worker.
import type { FerryOptions, UntypedSchema } from './index.js';

/** The tag the page registers and the worker listens for, unless the app names another. */
export declare const DEFAULT_SYNC_TAG: 'ferry-sync';

export interface FerrySyncOptions<S = UntypedSchema> extends FerryOptions<S> {
  /** The Background Sync tag (default `ferry-sync`; the page's `backgroundSync.tag`). */
  tag?: string;
  /** How long one wake-up may wait for the outbox to empty (default 60000 ms). */
  flushTimeoutMs?: number;
}

/**
 * Opens Ferry, waits until no write waits, closes it. Rejects (so the browser retries the
 * sync) when offline, refused, or not done in time.
 */
export declare function flushOutbox<S = UntypedSchema>(options: FerryOptions<S>, limits?: { timeoutMs?: number }): Promise<void>;

/**
 * Flushes the outbox on the `sync` (and `periodicsync`) event of the tag. Call once at the
 * worker's top level. `options` may be a function called at each wake-up (null: nothing to do).
 */
export declare function ferrySync<S = UntypedSchema>(
  options: FerrySyncOptions<S> | (() => FerrySyncOptions<S> | null | Promise<FerrySyncOptions<S> | null>),
  settings?: { tag?: string; flushTimeoutMs?: number },
): { tag: string; flush(): Promise<void> };
