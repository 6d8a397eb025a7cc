// ferry-sync/devtools: a support panel over `ferry.inspect()`. `openInspector(ferry)` adds a
// <ferry-inspector> element to the page showing the outbox (each entry's state and
// attempts), conflicts and their history, dead letters, the cursor, the leader tab and the
// recent sync cycles with their trace ids, refreshed as the engine changes, with a button
// that copies the whole dump as JSON for a support ticket. Plain DOM (textContent only: no
// record id or server message is ever parsed as HTML).

const TAG = 'ferry-inspector';

const time = (ms) => (ms === null || ms === undefined ? '-' : new Date(ms).toISOString().replace('T', ' ').replace('Z', ''));

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? '')));
  return node;
}

function table(caption, columns, rows, name) {
  const head = el('tr', {}, columns.map(([title]) => el('th', {}, title)));
  const body = rows.length
    ? rows.map((row) => el('tr', {}, columns.map(([, get]) => el('td', {}, get(row)))))
    : [el('tr', {}, el('td', { colspan: String(columns.length) }, 'none'))];
  return el('table', { 'data-section': name }, el('caption', {}, `${caption} (${rows.length})`), el('thead', {}, head), el('tbody', {}, body));
}

const STYLE = `:host{all:initial;position:fixed;right:8px;bottom:8px;z-index:2147483647;max-width:min(960px,96vw);max-height:70vh;overflow:auto;background:#fff;color:#111;border:1px solid #888;border-radius:6px;box-shadow:0 4px 16px #0004;font:12px/1.4 ui-monospace,monospace;padding:8px}
header{display:flex;gap:8px;align-items:center;margin-bottom:6px}header strong{flex:1}
table{border-collapse:collapse;width:100%;margin:6px 0}caption{text-align:left;font-weight:bold}
th,td{border:1px solid #ccc;padding:2px 4px;text-align:left;vertical-align:top;word-break:break-all}
dl{display:grid;grid-template-columns:max-content 1fr;gap:0 8px;margin:0}dt{font-weight:bold}`;

// Outside a browser (server-side rendering) the module still imports; the element is inert.
const Base = typeof HTMLElement === 'undefined' ? class {} : HTMLElement;

/** The panel: set `.ferry` to an open Ferry; removing the element stops its subscriptions. */
export class FerryInspectorElement extends Base {
  #ferry = null;
  #stops = [];
  #queued = false;
  #root = this.attachShadow({ mode: 'open' });

  get ferry() {
    return this.#ferry;
  }

  set ferry(ferry) {
    this.#stop();
    this.#ferry = ferry;
    if (this.isConnected) this.#start();
  }

  connectedCallback() {
    this.#start();
  }

  disconnectedCallback() {
    this.#stop();
  }

  #start() {
    if (!this.#ferry || this.#stops.length) return;
    const refresh = () => this.#schedule();
    this.#stops = [this.#ferry.syncState, this.#ferry.conflicts, this.#ferry.deadLetters].map((o) => o.subscribe(refresh));
    this.render();
  }

  #stop() {
    for (const stop of this.#stops) stop();
    this.#stops = [];
  }

  #schedule() {
    if (this.#queued) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      if (this.isConnected) this.render();
    });
  }

  /** Redraws from a fresh `ferry.inspect()`. */
  render() {
    if (!this.#ferry) return;
    const d = this.#ferry.inspect();
    const s = d.syncState;
    const copy = el('button', { type: 'button', 'data-action': 'copy' }, 'Copy JSON');
    copy.addEventListener('click', () => navigator.clipboard?.writeText(JSON.stringify(this.#ferry.inspect(), null, 2)));
    const close = el('button', { type: 'button', 'data-action': 'close' }, 'Close');
    close.addEventListener('click', () => this.remove());
    const refresh = el('button', { type: 'button', 'data-action': 'refresh' }, 'Refresh');
    refresh.addEventListener('click', () => this.render());
    this.#root.replaceChildren(
      el('style', {}, STYLE),
      el('header', {}, el('strong', {}, 'Ferry inspector'), refresh, copy, close),
      el(
        'dl',
        { 'data-section': 'summary' },
        el('dt', {}, 'status'), el('dd', {}, `${s.status}${s.synced ? ' (synced)' : s.hasPendingWrites ? ' (writes waiting)' : ''}`),
        el('dt', {}, 'last error'), el('dd', {}, s.lastError ?? '-'),
        el('dt', {}, 'client id'), el('dd', {}, d.clientId),
        el('dt', {}, 'cursor'), el('dd', { 'data-field': 'cursor' }, `${d.cursor}${d.resyncing ? ' (resyncing)' : ''}`),
        el('dt', {}, 'leader tab'), el('dd', { 'data-field': 'leader' }, d.isLeader ? 'this tab' : 'another tab'),
        el('dt', {}, 'last synced'), el('dd', {}, time(d.lastSyncedAt)),
      ),
      table('Outbox', [
        ['entry', (e) => e.entryId], ['record', (e) => `${e.collection}/${e.recordId}`], ['op', (e) => e.op], ['state', (e) => e.state],
        ['op id', (e) => e.opId ?? '-'], ['attempts', (e) => e.attempts], ['writes', (e) => e.writes], ['last error', (e) => e.lastError ?? '-'],
      ], d.outbox, 'outbox'),
      table('Conflicts', [
        ['conflict', (c) => c.conflictId], ['record', (c) => `${c.collection}/${c.recordId}`], ['policy', (c) => c.policy],
        ['fields', (c) => c.fields.join(', ') || '(whole record)'], ['since', (c) => time(c.createdAt)],
      ], d.conflicts, 'conflicts'),
      table('Conflict history', [
        ['conflict', (c) => c.conflictId], ['record', (c) => `${c.collection}/${c.recordId}`], ['seen', (c) => time(c.seenAt)],
        ['resolved', (c) => time(c.resolvedAt)], ['how', (c) => c.resolution ?? (c.resolvedAt ? 'elsewhere' : 'open')],
      ], d.conflictHistory, 'conflict-history'),
      table('Dead letters', [
        ['letter', (l) => l.letterId], ['record', (l) => `${l.collection}/${l.recordId}`], ['op id', (l) => l.opId], ['code', (l) => l.code],
        ['message', (l) => l.message], ['attempts', (l) => l.attempts], ['failed', (l) => time(l.failedAt)],
      ], d.deadLetters, 'dead-letters'),
      table('Recent sync cycles', [
        ['trace id', (c) => c.traceId], ['started', (c) => time(c.startedAt)], ['ok', (c) => (c.ok ? 'yes' : 'no')],
        ['requests', (c) => c.requests.map((r) => `${r.method} ${new URL(r.url, location.href).pathname} ${r.status ?? r.error} (${r.ms ?? '…'} ms)`).join('; ')],
      ], [...d.cycles].reverse(), 'cycles'),
    );
  }
}

if (typeof customElements !== 'undefined' && !customElements.get(TAG)) customElements.define(TAG, FerryInspectorElement);

/** Adds the inspector panel for `ferry` to `parent` (default: the page's body); returns it. */
export function openInspector(ferry, parent = document.body) {
  const panel = document.createElement(TAG);
  panel.ferry = ferry;
  parent.append(panel);
  return panel;
}
