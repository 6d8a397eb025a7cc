// ferry-sync's support records kept in the page: the recent sync cycles (from the fetch
// calls, grouped by trace id) and every conflict this handle saw, for `inspect()`.

const RECENT_CYCLES = 20;
const CONFLICT_HISTORY = 100;

/**
 * The recent sync cycles, seen from the fetch calls the engine makes: each request carries
 * the cycle's W3C `traceparent`, so requests group into cycles by trace id — the id the
 * server logs too, which is what support needs to find a cycle on both sides.
 */
export class SyncLog {
  #cycles = [];

  /** A fetch-compatible function that records each request, then calls `inner` (or fetch). */
  wrap(inner) {
    return (input, init) => {
      const traceparent = init && init.headers ? new Headers(init.headers).get('traceparent') : null;
      const request = { method: (init && init.method) || 'GET', url: String(input), startedAt: Date.now(), status: null, error: null, ms: null };
      this.#cycle(traceparent ? traceparent.split('-')[1] : 'untraced', request.startedAt).requests.push(request);
      const done = () => (request.ms = Date.now() - request.startedAt);
      const sent = inner ? inner(input, init) : globalThis.fetch(input, init);
      return Promise.resolve(sent).then(
        (response) => {
          done();
          request.status = response && response.status;
          return response;
        },
        (error) => {
          done();
          request.error = error && error.message ? `${error.name}: ${error.message}` : String(error);
          throw error;
        },
      );
    };
  }

  #cycle(traceId, at) {
    let cycle = this.#cycles.find((c) => c.traceId === traceId);
    if (!cycle) {
      cycle = { traceId, startedAt: at, requests: [] };
      this.#cycles.push(cycle);
      if (this.#cycles.length > RECENT_CYCLES) this.#cycles.shift();
    }
    return cycle;
  }

  /** The recent cycles, oldest first, each with an `ok` summary. */
  cycles() {
    return this.#cycles.map((c) => ({
      ...c,
      requests: c.requests.map((r) => ({ ...r })),
      ok: c.requests.every((r) => r.status !== null && r.status >= 200 && r.status < 300),
    }));
  }
}

/** Every conflict this handle has seen, and when it left the inbox (resolved here or elsewhere). */
export class ConflictHistory {
  #entries = new Map();

  observe(list) {
    const now = Date.now();
    const open = new Set();
    for (const c of list) {
      open.add(c.id);
      if (!this.#entries.has(c.id)) {
        this.#entries.set(c.id, { conflictId: c.id, collection: c.collection, recordId: c.recordId, policy: c.policy, fields: [...c.fields], seenAt: now, resolvedAt: null, resolution: null });
      }
    }
    for (const entry of this.#entries.values()) {
      if (entry.resolvedAt === null && !open.has(entry.conflictId)) entry.resolvedAt = now;
    }
    while (this.#entries.size > CONFLICT_HISTORY) this.#entries.delete(this.#entries.keys().next().value);
  }

  /** Notes how this tab resolved a conflict (`'local'`, `'server'` or `'merged'`). */
  resolving(id, choice) {
    const entry = this.#entries.get(id);
    if (entry) entry.resolution = choice === 'local' || choice === 'server' ? choice : 'merged';
  }

  list() {
    return [...this.#entries.values()].map((e) => ({ ...e }));
  }
}

