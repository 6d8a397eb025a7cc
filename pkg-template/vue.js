// ferry-sync/vue: composables returning refs. The app opens Ferry once and installs it with
// `app.use(ferryPlugin(ferry))`; the composables find it with inject() and stop their
// subscriptions when the component's scope ends.
import { getCurrentScope, inject, onScopeDispose, shallowReadonly, shallowRef, toValue, watch } from 'vue';
import { FerryError } from './index.js';

/** The injection key of the open Ferry. */
export const FERRY_KEY = Symbol('ferry-sync');

/** A Vue plugin providing `ferry` to every component (`app.use(ferryPlugin(ferry))`). */
export function ferryPlugin(ferry) {
  return { install: (app) => app.provide(FERRY_KEY, ferry) };
}

/** The Ferry provided by ferryPlugin. */
export function useFerry() {
  const ferry = inject(FERRY_KEY, null);
  if (!ferry) throw new FerryError('invalid_argument', 'useFerry: no Ferry provided; call app.use(ferryPlugin(ferry)) first');
  return ferry;
}

function stopWithScope(stop) {
  if (getCurrentScope()) onScopeDispose(stop);
}

/** A read-only ref following a Ferry observable. */
export function useObservable(observable) {
  const value = shallowRef(observable.getSnapshot());
  stopWithScope(observable.subscribe((v) => (value.value = v)));
  return shallowReadonly(value);
}

/** A live query's rows as a ref; `collection` and `options` may be refs or getters. */
export function useQuery(collection, options) {
  const ferry = useFerry();
  const rows = shallowRef([]);
  const stop = watch(
    () => [toValue(collection), JSON.stringify(toValue(options) ?? null)],
    ([name], _old, onCleanup) => {
      const unsubscribe = ferry.query(name, toValue(options)).subscribe((list) => (rows.value = list));
      onCleanup(unsubscribe);
    },
    { immediate: true },
  );
  stopWithScope(stop);
  return shallowReadonly(rows);
}

/** One record as a ref (`undefined` when missing); `id` may be a ref or a getter. */
export function useRecord(collection, id) {
  const rows = useQuery(collection);
  const record = shallowRef(undefined);
  stopWithScope(watch([rows, () => toValue(id)], ([list, key]) => (record.value = list.find((r) => r.id === key)), { immediate: true }));
  return shallowReadonly(record);
}

/** The sync state as a ref. */
export function useSyncState() {
  return useObservable(useFerry().syncState);
}

/** The conflicts as a ref. */
export function useConflicts() {
  return useObservable(useFerry().conflicts);
}

/** The dead letters as a ref. */
export function useDeadLetters() {
  return useObservable(useFerry().deadLetters);
}

/** The composables, typed by a schema in TypeScript (the same functions at run time). */
export function composablesFor() {
  return { useFerry, useQuery, useRecord, useSyncState, useConflicts, useDeadLetters };
}
