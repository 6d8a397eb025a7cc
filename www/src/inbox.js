// The inbox: conflicts that need a person (base / mine / theirs, field by field), changes the
// server refused for good (dead letters), and a history of how each was settled.
import { h, keyedList, displayValue, sameValue, relativeTime, formatTimestamp } from './dom.js';
import { fieldsOf, META } from './edits.js';
import { COLLECTIONS, recordLabel, fieldLabel, showField } from './common.js';
import { expenseFields } from './expenses.js';
import { toast } from './toast.js';

// ---------------------------------------------------------------------------------------------
// Resolution history (localStorage, per user).

export class History {
  constructor(user) {
    this.key = `ferry-field.history.${user}`;
    this.listeners = new Set();
  }
  list() {
    try {
      const v = JSON.parse(localStorage.getItem(this.key) || '[]');
      return Array.isArray(v) ? v : [];
    } catch {
      return [];
    }
  }
  add(entry) {
    const all = [{ at: Date.now(), ...entry }, ...this.list()].slice(0, 50);
    localStorage.setItem(this.key, JSON.stringify(all));
    for (const fn of this.listeners) fn(all);
  }
  clear() {
    localStorage.removeItem(this.key);
    for (const fn of this.listeners) fn([]);
  }
  subscribe(fn) {
    this.listeners.add(fn);
    fn(this.list());
    return () => this.listeners.delete(fn);
  }
}

const CHOICE_TEXT = {
  local: 'kept mine',
  server: 'took theirs',
  merged: 'picked per field',
  retry: 'sent again',
  edit: 'edited and sent again',
  discard: 'discarded',
};

// ---------------------------------------------------------------------------------------------

export function mountInbox(root, ctx) {
  const conflictsList = h('div', { class: 'stack', testid: 'conflicts-list' });
  const lettersList = h('div', { class: 'stack', testid: 'dead-letters-list' });
  const historyList = h('ol', { class: 'history', testid: 'resolution-history' });
  const conflictsHead = h('h2', { class: 'section-title' }, 'Conflicts to review ', h('span', { class: 'count' }));
  const lettersHead = h('h2', { class: 'section-title' }, 'Refused by the server ', h('span', { class: 'count' }));
  const allClear = h('div', { class: 'card empty-state', testid: 'inbox-empty' },
    h('div', { class: 'empty-state__icon', 'aria-hidden': 'true', text: '✓' }),
    h('h2', { text: 'All clear' }),
    h('p', { class: 'muted', text: 'Nothing needs your attention. Conflicts and refused changes show up here.' }));
  const clearBtn = h('button', { type: 'button', class: 'btn btn--ghost btn--small', text: 'Clear history', onclick: () => ctx.history.clear() });

  root.append(
    h('div', { class: 'view__head' }, h('h1', { text: 'Inbox' }),
      h('p', { class: 'muted', text: 'Decide what happens to changes that could not be applied on their own.' })),
    allClear,
    h('section', { 'aria-label': 'Conflicts' }, conflictsHead, conflictsList),
    h('section', { 'aria-label': 'Refused changes' }, lettersHead, lettersList),
    h('section', { class: 'card history-card', 'aria-label': 'Resolution history' },
      h('div', { class: 'history-card__head' }, h('h2', { class: 'section-title', text: 'Resolution history' }), clearBtn),
      historyList));

  const renderConflicts = keyedList(conflictsList, { create: (c) => conflictCard(c, ctx) });
  const renderLetters = keyedList(lettersList, { create: (l) => letterCard(l, ctx) });

  const draw = () => {
    const { conflicts, deadLetters } = ctx.inbox;
    renderConflicts(conflicts);
    renderLetters(deadLetters);
    conflictsHead.hidden = conflicts.length === 0;
    lettersHead.hidden = deadLetters.length === 0;
    conflictsHead.querySelector('.count').textContent = String(conflicts.length);
    lettersHead.querySelector('.count').textContent = String(deadLetters.length);
    allClear.hidden = conflicts.length + deadLetters.length > 0;
  };
  const unsubInbox = ctx.onInbox(draw);
  const unsubHistory = ctx.history.subscribe((entries) => {
    historyList.replaceChildren(...entries.map((e) => h('li', { class: 'history__item', testid: 'history-item', dataset: { choice: e.choice } },
      h('span', { class: `pill pill--${e.choice}`, text: CHOICE_TEXT[e.choice] || e.choice }),
      h('span', { class: 'history__what' }, `${COLLECTIONS[e.collection]?.label || e.collection} “${e.label}”`,
        e.detail ? h('span', { class: 'muted', text: ` — ${e.detail}` }) : null),
      h('time', { class: 'muted small', dateTime: new Date(e.at).toISOString(), title: formatTimestamp(e.at), text: relativeTime(e.at) }))));
    if (entries.length === 0) historyList.append(h('li', { class: 'muted small', text: 'Nothing resolved yet.' }));
    clearBtn.hidden = entries.length === 0;
  });
  draw();
  return () => {
    unsubInbox();
    unsubHistory();
  };
}

// ---------------------------------------------------------------------------------------------
// One conflict.

function conflictCard(conflict, ctx) {
  const base = fieldsOf(conflict.base);
  const local = fieldsOf(conflict.local);
  const server = fieldsOf(conflict.server);
  // `null` stands for a deleted record.
  const serverDeleted = conflict.server === null;
  const localDeleted = conflict.local === null;
  const names = [...new Set([...Object.keys(base), ...Object.keys(local), ...Object.keys(server)])].filter((f) => !META(f));
  const flagged = new Set(Array.isArray(conflict.fields) ? conflict.fields : []);
  const differs = (f) => !sameValue(local[f], server[f]);
  // Conflicting fields first, then other differences, then the rest.
  names.sort((a, b) => (flagged.has(b) - flagged.has(a)) || (differs(b) - differs(a)) || order(a) - order(b));

  const label = recordLabel(conflict.collection, Object.keys(local).length ? local : server);
  const kind = COLLECTIONS[conflict.collection]?.label || conflict.collection;
  const gid = `c-${String(conflict.id).replace(/[^a-zA-Z0-9_-]/g, '_')}`;
  const el = h('article', { class: 'card conflict', testid: 'conflict-card', dataset: { id: conflict.id, collection: conflict.collection, recordId: conflict.recordId }, 'aria-labelledby': `${gid}-title` });

  const same = names.filter((f) => !differs(f));
  const rows = names.filter(differs).map((f) => {
    const d = differs(f);
    const cell = (side, value, extra) => h('td', { class: `conflict__cell conflict__cell--${side}${extra || ''}`, dataset: { label: side === 'base' ? 'Before' : side === 'local' ? 'Mine' : 'Theirs' } },
      h('span', { class: 'conflict__value', testid: `conflict-${side}-${f}`, text: showField(f, value, displayValue) }));
    const pick = d
      ? h('td', { class: 'conflict__pick' },
        h('fieldset', { class: 'pick' },
          h('legend', { class: 'sr-only', text: `Keep which ${fieldLabel(f)}?` }),
          radio(`${gid}-${f}`, 'local', 'Mine', f, true),
          radio(`${gid}-${f}`, 'server', 'Theirs', f, false)))
      : h('td', { class: 'conflict__pick muted small', text: 'same' });
    return h('tr', { class: d ? 'conflict__row conflict__row--differs' : 'conflict__row', dataset: { field: f } },
      h('th', { scope: 'row', class: 'conflict__field', text: fieldLabel(f) }),
      cell('base', base[f]),
      cell('local', localDeleted ? undefined : local[f], d && !sameValue(local[f], base[f]) ? ' changed' : ''),
      cell('server', serverDeleted ? undefined : server[f], d && !sameValue(server[f], base[f]) ? ' changed' : ''),
      pick);
  });

  const busy = (on) => el.querySelectorAll('button, input').forEach((b) => { b.disabled = on; });
  async function resolve(choice) {
    let arg = choice;
    let detail = '';
    if (choice === 'merged') {
      const merged = { ...server };
      const picks = [];
      for (const f of names) {
        if (!differs(f)) continue;
        const side = el.querySelector(`input[name="${CSS.escape(`${gid}-${f}`)}"]:checked`)?.value || 'local';
        picks.push(`${fieldLabel(f)}: ${side === 'local' ? 'mine' : 'theirs'}`);
        if (side === 'local') {
          if (f in local) merged[f] = local[f];
          else delete merged[f];
        }
      }
      arg = merged;
      detail = picks.join(', ');
    }
    busy(true);
    try {
      await conflict.resolve(arg);
      ctx.history.add({ kind: 'conflict', choice, collection: conflict.collection, recordId: conflict.recordId, label, detail });
      toast(`Resolved: ${kind.toLowerCase()} “${label}” — ${CHOICE_TEXT[choice]}.`, 'success');
    } catch (err) {
      busy(false);
      toast(`Could not resolve: ${err?.message || err}`, 'error');
    }
  }

  el.append(
    h('header', { class: 'conflict__head' },
      h('span', { class: 'conflict__icon', 'aria-hidden': 'true', text: '!' }),
      h('div', {},
        h('h3', { id: `${gid}-title`, text: `${kind}: ${label}` }),
        h('p', { class: 'muted small', text: explain(conflict.collection, serverDeleted) }))),
    h('div', { class: 'table-scroll' },
      h('table', { class: 'conflict__table' },
        h('caption', { class: 'sr-only', text: `Values of ${kind.toLowerCase()} ${label}: before, mine and theirs` }),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col', text: 'Field' }), h('th', { scope: 'col', text: 'Before' }),
          h('th', { scope: 'col', text: 'Mine' }), h('th', { scope: 'col', text: 'Theirs' }), h('th', { scope: 'col', text: 'Keep' }))),
        h('tbody', {}, rows))),
    same.length ? h('details', { class: 'conflict__same' },
      h('summary', { text: `${same.length} other field${same.length === 1 ? ' is' : 's are'} the same on both sides` }),
      h('dl', { class: 'letter__fields' }, same.flatMap((f) => [h('dt', { text: fieldLabel(f) }), h('dd', { text: showField(f, server[f] ?? local[f], displayValue) })]))) : null,
    h('div', { class: 'conflict__actions' },
      h('button', { type: 'button', class: 'btn', testid: 'resolve-server', text: 'Take theirs', onclick: () => resolve('server') }),
      h('button', { type: 'button', class: 'btn', testid: 'resolve-local', text: 'Keep mine', onclick: () => resolve('local') }),
      h('button', { type: 'button', class: 'btn btn--primary', testid: 'resolve-merged', text: 'Use my picks', onclick: () => resolve('merged') })));
  return el;
}

const ORDER = ['title', 'description', 'body', 'amount', 'currency', 'category', 'date', 'done', 'assignee'];
const order = (f) => (ORDER.includes(f) ? ORDER.indexOf(f) : 100);

function radio(name, value, text, f, checked) {
  const id = `${name}-${value}`;
  return h('span', { class: 'pick__option' },
    h('input', { type: 'radio', name, id, value, checked, testid: `pick-${f}-${value}` }),
    h('label', { for: id, text }));
}

function explain(collection, serverDeleted) {
  if (serverDeleted) return 'It was deleted elsewhere while you changed it. Theirs is shown until you decide.';
  switch (COLLECTIONS[collection]?.policy) {
    case 'server-wins-review':
      return 'Someone else changed it while you were editing. The server’s version is shown until you review.';
    case 'merge-fields':
      return 'You and someone else changed the same part. The server’s version is shown until you decide.';
    default:
      return 'Your change and the server’s disagree.';
  }
}

// ---------------------------------------------------------------------------------------------
// One dead letter.

function letterCard(letter, ctx) {
  const desiredRecord = letter.desired;
  const isDelete = desiredRecord === null;
  const desired = fieldsOf(desiredRecord);
  const kind = COLLECTIONS[letter.collection]?.label || letter.collection;
  const label = recordLabel(letter.collection, desired);
  const el = h('article', { class: 'card letter', role: 'alert', testid: 'dead-letter', dataset: { id: letter.id, collection: letter.collection, recordId: letter.recordId } });
  const body = h('div', { class: 'letter__body' });

  const busy = (on) => el.querySelectorAll('button, input, select').forEach((b) => { b.disabled = on; });
  async function act(choice, fn, detail) {
    busy(true);
    try {
      await fn();
      ctx.history.add({ kind: 'dead-letter', choice, collection: letter.collection, recordId: letter.recordId, label, detail });
      toast(choice === 'discard' ? `Discarded the refused change to “${label}”.` : `Sent “${label}” again.`, 'success');
    } catch (err) {
      busy(false);
      toast(`That did not work: ${err?.message || err}`, 'error');
    }
  }

  function summary() {
    const names = Object.keys(desired).filter((f) => !META(f)).sort((a, b) => order(a) - order(b));
    body.replaceChildren(
      isDelete ? h('p', { class: 'muted', text: 'You deleted this record; the server did not accept the delete.' }) : h('dl', { class: 'letter__fields' }, names.flatMap((f) => [h('dt', { text: fieldLabel(f) }), h('dd', { text: showField(f, desired[f], displayValue) })])),
      h('div', { class: 'conflict__actions' },
        h('button', { type: 'button', class: 'btn btn--ghost btn--danger', testid: 'letter-discard', text: 'Discard', onclick: () => act('discard', () => letter.discard()) }),
        h('button', { type: 'button', class: 'btn', testid: 'letter-retry', text: 'Retry', onclick: () => act('retry', () => letter.retry()) }),
        isDelete ? null : h('button', { type: 'button', class: 'btn btn--primary', testid: 'letter-edit', text: 'Edit', onclick: editor })));
  }

  function editor() {
    let read;
    let check;
    let nodes;
    if (letter.collection === 'expenses') {
      const fields = expenseFields(desired, 'letter');
      nodes = fields.nodes;
      read = () => ({ ...desired, ...fields.read() });
      check = () => fields.check();
    } else {
      const inputs = {};
      nodes = Object.entries(desired).filter(([f]) => !META(f)).map(([f, v]) => {
        const id = `${letter.id}-${f}`;
        const input = typeof v === 'boolean'
          ? h('input', { type: 'checkbox', id, checked: v })
          : h('input', { id, type: typeof v === 'number' ? 'number' : 'text', value: typeof v === 'string' || typeof v === 'number' ? String(v) : JSON.stringify(v) });
        inputs[f] = { input, v };
        return h('div', { class: 'field' }, h('label', { for: id, text: fieldLabel(f) }), input);
      });
      read = () => {
        const out = { ...desired };
        for (const [f, { input, v }] of Object.entries(inputs)) {
          if (typeof v === 'boolean') out[f] = input.checked;
          else if (typeof v === 'number') out[f] = Number(input.value);
          else if (typeof v === 'string') out[f] = input.value;
          else try { out[f] = JSON.parse(input.value); } catch { out[f] = input.value; }
        }
        return out;
      };
      check = () => true;
    }
    const form = h('form', { class: 'letter__edit composer--grid', novalidate: true, 'aria-label': `Edit the refused ${kind.toLowerCase()}` }, ...nodes,
      h('div', { class: 'composer__actions' },
        h('button', { type: 'button', class: 'btn btn--ghost', text: 'Cancel', onclick: summary }),
        h('button', { type: 'submit', class: 'btn btn--primary', testid: 'letter-send', text: 'Send again' })));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!check()) return;
      const edited = read();
      const changes = Object.keys(edited).filter((f) => !sameValue(edited[f], desired[f])).map((f) => `${fieldLabel(f)} → ${displayValue(edited[f])}`);
      act('edit', () => letter.retry(edited), changes.join(', '));
    });
    body.replaceChildren(form);
    form.querySelector('input')?.focus();
  }

  el.append(
    h('header', { class: 'letter__head' },
      h('span', { class: 'letter__icon', 'aria-hidden': 'true', text: '⚠' }),
      h('div', {},
        h('h3', { text: `${kind} “${label}” was not accepted` }),
        h('p', { class: 'letter__reason' },
          'The server said: ', h('strong', { testid: 'letter-reason', text: letter.message || 'no reason given' }),
          letter.code ? h('code', { class: 'letter__code', text: letter.code }) : null))),
    body);
  summary();
  return el;
}
