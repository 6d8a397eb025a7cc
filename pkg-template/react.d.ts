// Declarations of ferry-sync/react.
import type { ReactNode } from 'react';
import type { AnyConflict, AnyDeadLetter, CollectionName, Ferry, FerryOptions, Observable, QueryOptions, SchemaOf, SyncState, UntypedSchema } from './index.js';

export interface FerryProviderProps<S extends SchemaOf<S> = UntypedSchema> {
  /** Passed to Ferry.open(); a new `name` or `url` reopens. */
  options: FerryOptions<S>;
  /** Rendered until the database is open (default: nothing). */
  fallback?: ReactNode;
  children?: ReactNode;
}

/** Opens Ferry for the components inside and closes it on unmount (StrictMode-safe). */
export declare function FerryProvider<S extends SchemaOf<S> = UntypedSchema>(props: FerryProviderProps<S>): ReactNode;

/** The Ferry opened by the nearest FerryProvider; give the schema to type it. */
export declare function useFerry<S extends SchemaOf<S> = UntypedSchema>(): Ferry<S>;

/** The current value of a Ferry observable. */
export declare function useObservable<T>(observable: Observable<T>): T;

/** A live query's rows. */
export declare function useQuery<S extends SchemaOf<S> = UntypedSchema, C extends CollectionName<S> = CollectionName<S>>(
  collection: C,
  options?: QueryOptions<S[C]>,
): S[C][];

/** One record, or `undefined`. */
export declare function useRecord<S extends SchemaOf<S> = UntypedSchema, C extends CollectionName<S> = CollectionName<S>>(
  collection: C,
  id: string,
): S[C] | undefined;

export declare function useSyncState(): SyncState;
export declare function useConflicts<S extends SchemaOf<S> = UntypedSchema>(): AnyConflict<S>[];
export declare function useDeadLetters<S extends SchemaOf<S> = UntypedSchema>(): AnyDeadLetter<S>[];

/** The hooks, typed by schema `S` (see `hooksFor`). */
export interface FerryHooks<S extends SchemaOf<S>> {
  useFerry(): Ferry<S>;
  useQuery<C extends CollectionName<S>>(collection: C, options?: QueryOptions<S[C]>): S[C][];
  useRecord<C extends CollectionName<S>>(collection: C, id: string): S[C] | undefined;
  useSyncState(): SyncState;
  useConflicts(): AnyConflict<S>[];
  useDeadLetters(): AnyDeadLetter<S>[];
}

/**
 * The same hooks typed by your schema, for one module to export:
 * `export const { useQuery, useRecord } = hooksFor<MySchema>();`
 */
export declare function hooksFor<S extends SchemaOf<S>>(): FerryHooks<S>;
