// Small DOM helpers: no framework, just elements.

/**
 * h('div', {class: 'x', onclick: fn, dataset: {testid: 'y'}}, child, 'text', [more])
 * Attributes: `class`, `text`, `html` is not supported on purpose (no innerHTML of data).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'testid') el.dataset.testid = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== 'string' && key !== 'list') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);

let uid = 0;
/** A unique id for label/input pairs. */
export const nextId = (prefix = 'f') => `${prefix}-${++uid}`;

/** A labelled form field: returns {wrap, input}. */
export function field(label, input, hint) {
  const id = input.id || nextId('in');
  input.id = id;
  const errorEl = h('p', { class: 'field-error', role: 'alert', hidden: true });
  const wrap = h('div', { class: 'field' },
    h('label', { for: id, text: label }),
    input,
    hint ? h('p', { class: 'field-hint muted small', text: hint }) : null,
    errorEl);
  const setError = (message) => {
    errorEl.textContent = message || '';
    errorEl.hidden = !message;
    input.setAttribute('aria-invalid', message ? 'true' : 'false');
    if (message) {
      errorEl.id = errorEl.id || nextId('err');
      input.setAttribute('aria-describedby', errorEl.id);
    } else input.removeAttribute('aria-describedby');
  };
  // Typing clears the message (validators that run on input may set it again). Not on
  // 'change': that fires on blur, and the layout shift would move the button being clicked.
  input.addEventListener('input', () => { if (!errorEl.hidden) setError(''); });
  return { wrap, input, setError };
}

/**
 * Keyed list rendering: keeps one element per key, updates it in place, and keeps the order.
 * `create(row)` returns an element with an `update(row)` method (optional).
 */
export function keyedList(container, { key = (r) => r.id, create, empty }) {
  const nodes = new Map();
  let emptyEl = null;
  return function render(rows) {
    const seen = new Set();
    let prev = null;
    for (const row of rows) {
      const k = key(row);
      seen.add(k);
      let node = nodes.get(k);
      if (!node) {
        node = create(row);
        nodes.set(k, node);
      } else if (node.update) {
        node.update(row);
      }
      const want = prev ? prev.nextSibling : container.firstChild;
      if (want !== node) container.insertBefore(node, want);
      prev = node;
    }
    for (const [k, node] of nodes) {
      if (!seen.has(k)) {
        node.remove();
        if (node.dispose) node.dispose();
        nodes.delete(k);
      }
    }
    if (empty) {
      if (rows.length === 0) {
        if (!emptyEl) emptyEl = empty();
        if (!emptyEl.isConnected) container.appendChild(emptyEl);
      } else if (emptyEl && emptyEl.isConnected) emptyEl.remove();
    }
  };
}

/** "just now", "3 min ago", "yesterday 14:02". */
export function relativeTime(ms, now = Date.now()) {
  if (!ms) return 'never';
  const diff = Math.max(0, now - ms);
  if (diff < 10_000) return 'just now';
  if (diff < 60_000) return `${Math.floor(diff / 1000)} s ago`;
  if (diff < 3_600_000) return `${Math.floor(diff / 60_000)} min ago`;
  const d = new Date(ms);
  const today = new Date(now);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (d.toDateString() === today.toDateString()) return `today ${time}`;
  return `${d.toLocaleDateString()} ${time}`;
}

export function formatTimestamp(ms) {
  return ms ? new Date(ms).toLocaleString() : '';
}

/** Field values for display: strings as they are, others as JSON; missing as an em dash. */
export function displayValue(v) {
  if (v === undefined || v === null) return '—';
  if (typeof v === 'string') return v === '' ? '(empty)' : v;
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return JSON.stringify(v);
}

export function sameValue(a, b) {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return false;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

export function initials(name) {
  return (name || '?').trim().split(/\s+/).map((p) => p[0]).join('').slice(0, 2).toUpperCase();
}

/** A stable hue per name, for avatars. */
export function hue(name) {
  let x = 0;
  for (const c of name || '') x = (x * 31 + c.charCodeAt(0)) >>> 0;
  return x % 360;
}

/** Record ids are made on the client: UUIDv7 (time-ordered). */
export function newId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  let ts = Date.now();
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ts & 0xff;
    ts = Math.floor(ts / 256);
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
