// Small promise helpers the benchmark pages share: IndexedDB requests and transactions as
// promises, and the first value of an observable that satisfies a predicate.

/** Resolves with a request's result, rejects with its error. */
export const req2p = (req) =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

/** Resolves when a transaction commits (durable at `oncomplete`), rejects if it fails. */
export const done = (tx) =>
  new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('aborted'));
  });

/** Resolves with the first value of an observable that satisfies `pred`, and when. */
export function when(observable, pred) {
  return new Promise((resolve) => {
    let unsub = null;
    let settled = false;
    unsub = observable.subscribe((v) => {
      if (!settled && pred(v)) {
        settled = true;
        const t = performance.now();
        queueMicrotask(() => unsub && unsub());
        resolve({ value: v, t });
      }
    });
    if (settled && unsub) unsub();
  });
}
