// ferry-sync/react: a provider that opens Ferry once (StrictMode-safe) and hooks over
// `useSyncExternalStore` whose subscribe/getSnapshot are stable, so a render never
// resubscribes.
import { createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import { Ferry, FerryError } from './index.js';

const FerryContext = createContext(null);

// A database being closed, by name: the next open of the same name waits for it, so
// StrictMode's mount -> unmount -> mount never has two handles racing for one database.
const closing = new Map();

function closeLater(ferry, name) {
  const done = ferry.close().catch(() => undefined).finally(() => {
    if (closing.get(name) === done) closing.delete(name);
  });
  closing.set(name, done);
}

/**
 * Opens Ferry with `options` for the components inside and closes it on unmount. Renders
 * `fallback` until the database is open; an open that fails is thrown to the nearest error
 * boundary. A new `name` or `url` reopens; other options are read at open time.
 */
export function FerryProvider({ options, fallback = null, children }) {
  const [state, setState] = useState({ ferry: null, error: null });
  const latest = useRef(options);
  latest.current = options;
  const { name, url } = options;
  useEffect(() => {
    let cancelled = false;
    let opened = null;
    const pending = closing.get(name) ?? Promise.resolve();
    pending
      .then(() => (cancelled ? null : Ferry.open(latest.current)))
      .then(
        (ferry) => {
          if (!ferry) return;
          if (cancelled) return closeLater(ferry, name);
          opened = ferry;
          setState({ ferry, error: null });
        },
        (error) => {
          if (!cancelled) setState({ ferry: null, error });
        },
      );
    return () => {
      cancelled = true;
      if (opened) closeLater(opened, name);
      setState({ ferry: null, error: null });
    };
  }, [name, url]);
  if (state.error) throw state.error;
  if (!state.ferry) return fallback;
  return createElement(FerryContext.Provider, { value: state.ferry }, children);
}

/** The Ferry opened by the nearest FerryProvider. */
export function useFerry() {
  const ferry = useContext(FerryContext);
  if (!ferry) {
    throw new FerryError('invalid_argument', 'useFerry: no open Ferry here; render this component inside <FerryProvider>');
  }
  return ferry;
}

/** The current value of a Ferry observable, re-rendering when it changes. */
export function useObservable(observable) {
  const subscribe = useCallback((onChange) => observable.subscribe(() => onChange()), [observable]);
  const getSnapshot = useCallback(() => observable.getSnapshot(), [observable]);
  return useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
}

/** A live query's rows (`options` may be a new object each render; its content is the key). */
export function useQuery(collection, options) {
  const ferry = useFerry();
  const key = JSON.stringify(options ?? null);
  // eslint-disable-next-line react-hooks/exhaustive-deps -- `key` stands for `options`.
  const query = useMemo(() => ferry.query(collection, options), [ferry, collection, key]);
  return useObservable(query);
}

/** One record of `collection`, or `undefined`; re-renders when the collection changes. */
export function useRecord(collection, id) {
  const rows = useQuery(collection);
  return useMemo(() => rows.find((r) => r.id === id), [rows, id]);
}

/** The sync state (see SyncState: `synced`, `hasPendingWrites`, `status`, `lastError`). */
export function useSyncState() {
  return useObservable(useFerry().syncState);
}

/** The conflicts that need a person. */
export function useConflicts() {
  return useObservable(useFerry().conflicts);
}

/** The mutations the server refused for good. */
export function useDeadLetters() {
  return useObservable(useFerry().deadLetters);
}

/** The hooks, typed by a schema in TypeScript (the same functions at run time). */
export function hooksFor() {
  return { useFerry, useQuery, useRecord, useSyncState, useConflicts, useDeadLetters };
}
