// Declarations of ferry-sync/vue.
import type { InjectionKey, MaybeRefOrGetter, Plugin, ShallowRef } from 'vue';
import type { AnyConflict, AnyDeadLetter, CollectionName, Ferry, Observable, QueryOptions, SchemaOf, SyncState, UntypedSchema } from './index.js';

/** The injection key of the open Ferry. */
export declare const FERRY_KEY: InjectionKey<Ferry<any>>;
/** A Vue plugin providing `ferry` to every component. */
export declare function ferryPlugin<S extends SchemaOf<S>>(ferry: Ferry<S>): Plugin;
/** The Ferry provided by ferryPlugin. */
export declare function useFerry<S extends SchemaOf<S> = UntypedSchema>(): Ferry<S>;
/** A read-only ref following a Ferry observable. */
export declare function useObservable<T>(observable: Observable<T>): Readonly<ShallowRef<T>>;
/** A live query's rows. */
export declare function useQuery<S extends SchemaOf<S> = UntypedSchema, C extends CollectionName<S> = CollectionName<S>>(
  collection: MaybeRefOrGetter<C>,
  options?: MaybeRefOrGetter<QueryOptions<S[C]> | undefined>,
): Readonly<ShallowRef<S[C][]>>;
/** One record, or `undefined`. */
export declare function useRecord<S extends SchemaOf<S> = UntypedSchema, C extends CollectionName<S> = CollectionName<S>>(
  collection: C,
  id: MaybeRefOrGetter<string>,
): Readonly<ShallowRef<S[C] | undefined>>;
export declare function useSyncState(): Readonly<ShallowRef<SyncState>>;
export declare function useConflicts<S extends SchemaOf<S> = UntypedSchema>(): Readonly<ShallowRef<AnyConflict<S>[]>>;
export declare function useDeadLetters<S extends SchemaOf<S> = UntypedSchema>(): Readonly<ShallowRef<AnyDeadLetter<S>[]>>;

/** The composables, typed by schema `S` (see `composablesFor`). */
export interface FerryComposables<S extends SchemaOf<S>> {
  useFerry(): Ferry<S>;
  useQuery<C extends CollectionName<S>>(collection: MaybeRefOrGetter<C>, options?: MaybeRefOrGetter<QueryOptions<S[C]> | undefined>): Readonly<ShallowRef<S[C][]>>;
  useRecord<C extends CollectionName<S>>(collection: C, id: MaybeRefOrGetter<string>): Readonly<ShallowRef<S[C] | undefined>>;
  useSyncState(): Readonly<ShallowRef<SyncState>>;
  useConflicts(): Readonly<ShallowRef<AnyConflict<S>[]>>;
  useDeadLetters(): Readonly<ShallowRef<AnyDeadLetter<S>[]>>;
}

/**
 * The same composables typed by your schema, for one module to export:
 * `export const { useQuery, useRecord } = composablesFor<MySchema>();`
 */
export declare function composablesFor<S extends SchemaOf<S>>(): FerryComposables<S>;
