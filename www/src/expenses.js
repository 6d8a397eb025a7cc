// Expenses (policy server-wins-review): the server's state stands; a local change that
// collides with someone else's goes to the inbox for review.
import { h, field, keyedList } from './dom.js';
import { fieldsOf } from './edits.js';
import { confirmButton, byCreatedDesc, writeFailed, money } from './common.js';

export const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF'];
export const CATEGORIES = ['Travel', 'Meals', 'Equipment', 'Lodging', 'Other'];

/** Checks an expense the way the server will; returns {field: message}. */
export function validateExpense(f) {
  const errors = {};
  if (!f.description || !String(f.description).trim()) errors.description = 'Say what the expense was for.';
  if (f.amount === '' || f.amount === undefined || f.amount === null || Number.isNaN(f.amount)) errors.amount = 'Enter an amount.';
  else if (typeof f.amount !== 'number' || !Number.isFinite(f.amount)) errors.amount = 'The amount must be a number.';
  else if (f.amount < 0) errors.amount = 'The amount cannot be negative. Record refunds as a note to finance.';
  return errors;
}

const today = () => new Date().toISOString().slice(0, 10);

/** The expense form fields (used by the composer, the row editor and dead-letter editing). */
export function expenseFields(values = {}, prefix = 'expense') {
  const description = field('Description', h('input', { maxlength: 200, value: values.description || '', placeholder: 'Train to Lyon', testid: `${prefix}-description` }));
  const amount = field('Amount', h('input', { type: 'number', inputmode: 'decimal', step: '0.01', min: '0', placeholder: '0.00', testid: `${prefix}-amount` }));
  if (typeof values.amount === 'number') amount.input.value = String(values.amount);
  const currency = field('Currency', h('select', { testid: `${prefix}-currency` }, CURRENCIES.map((c) => h('option', { value: c, text: c, selected: c === (values.currency || 'EUR') }))));
  const category = field('Category', h('select', { testid: `${prefix}-category` }, CATEGORIES.map((c) => h('option', { value: c, text: c, selected: c === (values.category || 'Travel') }))));
  const date = field('Date', h('input', { type: 'date', value: values.date || today(), testid: `${prefix}-date` }));
  const all = { description, amount, currency, category, date };
  return {
    all,
    nodes: [description.wrap, amount.wrap, currency.wrap, category.wrap, date.wrap],
    read() {
      const raw = amount.input.value.trim();
      return {
        description: description.input.value.trim(),
        amount: raw === '' ? '' : Number(raw),
        currency: currency.input.value,
        category: category.input.value,
        date: date.input.value || today(),
      };
    },
    /** Shows the errors; returns true when there are none. */
    check() {
      const errors = validateExpense(this.read());
      for (const [name, f] of Object.entries(all)) f.setError(errors[name] || '');
      const first = Object.keys(errors)[0];
      if (first) all[first].input.focus();
      return !first;
    },
  };
}

export function mountExpenses(root, ctx) {
  const { ferry } = ctx;
  const fields = expenseFields();
  const form = h('form', { class: 'card composer composer--grid', novalidate: true, 'aria-label': 'New expense' },
    h('h2', { class: 'composer__title', text: 'New expense' }),
    ...fields.nodes,
    h('div', { class: 'composer__actions' },
      h('button', { type: 'submit', class: 'btn btn--primary', testid: 'expense-add', text: 'Add expense' })));
  // Warn while typing, not only on submit.
  fields.all.amount.input.addEventListener('input', () => {
    const v = Number(fields.all.amount.input.value);
    fields.all.amount.setError(v < 0 ? 'The amount cannot be negative. Record refunds as a note to finance.' : '');
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!fields.check()) return;
    ferry.put('expenses', { id: ctx.newId(), ...fields.read(), submittedBy: ctx.user, createdAt: Date.now() }).catch(writeFailed);
    form.reset();
    fields.all.date.input.value = today();
    fields.all.description.input.focus();
  });

  const list = h('div', { class: 'expenses', role: 'list', testid: 'expenses-list', 'aria-label': 'Expenses' });
  const total = h('p', { class: 'expenses__total', testid: 'expenses-total' });
  root.append(
    h('div', { class: 'view__head' }, h('h1', { text: 'Expenses' }),
      h('p', { class: 'muted', text: 'The server has the final say on expenses; clashing changes come to your inbox for review.' })),
    h('div', { class: 'split split--wide' }, form,
      h('div', { class: 'card list-card' },
        h('div', { class: 'expenses__head', 'aria-hidden': 'true' },
          h('span', { text: 'Date' }), h('span', { text: 'Description' }), h('span', { text: 'Category' }), h('span', { class: 'num', text: 'Amount' }), h('span')),
        list, total)));

  const items = new Map();
  const render = keyedList(list, {
    create: (row) => {
      const el = expenseRow(row, ctx);
      items.set(row.id, el);
      return el;
    },
    empty: () => h('p', { class: 'empty', text: 'No expenses yet.' }),
  });
  let rows = [];
  const draw = () => {
    render(rows);
    ctx.counts('expenses', rows.length);
    const sums = {};
    for (const r of rows) {
      const f = fieldsOf(r);
      if (typeof f.amount === 'number') sums[f.currency || 'EUR'] = (sums[f.currency || 'EUR'] || 0) + f.amount;
    }
    const parts = Object.entries(sums).map(([c, v]) => money(v, c));
    total.textContent = parts.length ? `Total: ${parts.join(' + ')}` : '';
    for (const [id, el] of items) if (el.isConnected) el.flags(ctx.flagsFor('expenses', id));
  };
  const unsub = ferry.query('expenses', {}).subscribe((next) => {
    rows = [...next].sort((a, b) => String(fieldsOf(b).date || '').localeCompare(String(fieldsOf(a).date || '')) || byCreatedDesc(a, b));
    draw();
  });
  const unsubInbox = ctx.onInbox(draw);
  return () => {
    unsub();
    unsubInbox();
  };
}

function expenseRow(row, ctx) {
  const { ferry } = ctx;
  let current = row;
  let editing = false;
  let flags = { conflict: false, deadLetter: false };
  const el = h('div', { class: 'expense', role: 'listitem', testid: 'expense-row', dataset: { id: row.id } });

  function view() {
    const f = fieldsOf(current);
    el.replaceChildren(
      h('span', { class: 'expense__date muted', text: f.date || '' }),
      h('span', { class: 'expense__desc' },
        h('span', { testid: 'expense-row-description', text: f.description || '(no description)' }),
        flags.conflict ? h('button', { type: 'button', class: 'pill pill--review', testid: 'expense-needs-review', text: 'Needs review', onclick: () => ctx.show('inbox') }) : null,
        flags.deadLetter ? h('button', { type: 'button', class: 'pill pill--refused', text: 'Refused', onclick: () => ctx.show('inbox') }) : null),
      h('span', { class: 'expense__cat' }, h('span', { class: 'chip', text: f.category || 'Other' })),
      h('span', { class: 'expense__amount num', testid: 'expense-row-amount', text: money(f.amount, f.currency) }),
      h('span', { class: 'expense__actions' },
        h('button', { type: 'button', class: 'btn btn--ghost btn--small', testid: 'expense-edit', text: 'Edit', 'aria-label': `Edit expense ${f.description || ''}`, onclick: edit }),
        confirmButton('Delete', `Delete expense ${f.description || ''}`, () => ferry.delete('expenses', current.id).catch(writeFailed))));
  }

  function edit() {
    editing = true;
    const before = fieldsOf(current);
    const fields = expenseFields(before, 'expense-edit');
    const form = h('form', { class: 'expense__edit composer--grid', novalidate: true, 'aria-label': 'Edit expense' }, ...fields.nodes,
      h('div', { class: 'composer__actions' },
        h('button', { type: 'button', class: 'btn btn--ghost', text: 'Cancel', onclick: () => { editing = false; view(); } }),
        h('button', { type: 'submit', class: 'btn btn--primary', testid: 'expense-save', text: 'Save' })));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!fields.check()) return;
      const next = fields.read();
      const patch = {};
      for (const [k, v] of Object.entries(next)) if (v !== before[k]) patch[k] = v;
      editing = false;
      if (Object.keys(patch).length) {
        current = { ...current, ...patch };
        ferry.patch('expenses', current.id, patch).catch(writeFailed);
      }
      view();
    });
    el.replaceChildren(form);
    fields.all.description.input.focus();
  }

  el.flags = (next) => {
    if (next.conflict === flags.conflict && next.deadLetter === flags.deadLetter) return;
    flags = next;
    el.classList.toggle('expense--review', flags.conflict);
    if (!editing) view();
  };
  el.update = (next) => {
    current = next;
    if (!editing) view();
  };
  view();
  return el;
}
