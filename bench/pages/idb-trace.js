// Diagnostic (pages loaded with ?trace): wraps the IndexedDB, Web Locks and fetch entry points
// and records when each request starts and completes, as window.IDB_TRACE. Only for finding
// where an engine's time goes (bench/profile.mjs prints it); never on in the measured runs.
export function installTrace() {
  const log = [];
  window.IDB_TRACE = log;
  const t = () => +performance.now().toFixed(2);
  const wrapReq = (proto, name) => {
    const orig = proto[name];
    if (!orig) return;
    proto[name] = function (...args) {
      const start = t();
      const req = orig.apply(this, args);
      const store = this.name || (this.objectStore && this.objectStore.name) || '';
      req.addEventListener('success', () => {
        const n = name === 'getAll' && Array.isArray(req.result) ? req.result.length : undefined;
        log.push({ op: `${name}`, store, start, end: t(), n });
      });
      return req;
    };
  };
  for (const n of ['get', 'getAll', 'put', 'delete', 'count', 'openCursor']) wrapReq(IDBObjectStore.prototype, n);
  const origOpen = IDBFactory.prototype.open;
  IDBFactory.prototype.open = function (...args) {
    const start = t();
    const req = origOpen.apply(this, args);
    req.addEventListener('success', () => log.push({ op: 'open', store: args[0], start, end: t() }));
    req.addEventListener('upgradeneeded', () => log.push({ op: 'upgradeneeded', start, end: t() }));
    return req;
  };
  const origTx = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function (...args) {
    const start = t();
    const tx = origTx.apply(this, args);
    const stores = [].concat(args[0]).join(',');
    tx.addEventListener('complete', () => log.push({ op: `tx ${args[1] || 'readonly'}`, store: stores, start, end: t() }));
    return tx;
  };
  if (navigator.locks) {
    const origLock = navigator.locks.request.bind(navigator.locks);
    navigator.locks.request = (name, ...rest) => {
      const start = t();
      const cb = rest[rest.length - 1];
      rest[rest.length - 1] = (lock) => {
        log.push({ op: 'lock granted', store: name, start, end: t() });
        return cb(lock);
      };
      return origLock(name, ...rest);
    };
  }
  const origFetch = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const start = t();
    const url = String(input && input.url ? input.url : input);
    const p = origFetch(input, init);
    p.then(
      () => log.push({ op: 'fetch', store: url.replace(location.origin, ''), start, end: t() }),
      () => log.push({ op: 'fetch failed', store: url.replace(location.origin, ''), start, end: t() }),
    );
    return p;
  };
}
