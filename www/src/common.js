// Bits shared by the views.
import { h } from './dom.js';
import { toast } from './toast.js';

export const COLLECTIONS = {
  notes: { label: 'Note', policy: 'merge-fields', titleField: 'title' },
  tasks: { label: 'Task', policy: 'last-writer-wins', titleField: 'title' },
  expenses: { label: 'Expense', policy: 'server-wins-review', titleField: 'description' },
  private_notes: { label: 'Private note', policy: 'merge-fields', titleField: 'title' },
  claims: { label: 'Expense claim', policy: 'server-wins-review', titleField: 'description' },
};

const FIELD_LABELS = {
  title: 'title', body: 'text', done: 'done', assignee: 'assignee', description: 'description',
  amount: 'amount', currency: 'currency', category: 'category', date: 'date', author: 'author',
  createdAt: 'created', submittedBy: 'submitted by', updatedBy: 'changed by', updatedAt: 'changed at',
  owner: 'owner', shared_with: 'shared with',
};
export const fieldLabel = (f) => FIELD_LABELS[f] || f;

/** A field's value for people: timestamps as dates, the rest as displayValue does. */
export function showField(f, v, displayValue) {
  if ((f === 'createdAt' || f === 'updatedAt') && typeof v === 'number') return new Date(v).toLocaleString();
  return displayValue(v);
}

export function recordLabel(collection, fields) {
  const key = COLLECTIONS[collection]?.titleField || 'title';
  return (fields && fields[key]) || '(untitled)';
}

export function byCreatedDesc(a, b) {
  const fa = a.fields || a;
  const fb = b.fields || b;
  return (fb.createdAt || 0) - (fa.createdAt || 0) || String(b.id).localeCompare(String(a.id));
}

export function writeFailed(err) {
  console.error(err);
  toast(`Could not save on this device: ${err?.message || err}`, 'error', { timeout: 8000 });
}

/** A delete button that asks once more before acting. */
export function confirmButton(text, ariaLabel, action) {
  let armed = null;
  const btn = h('button', { type: 'button', class: 'btn btn--ghost btn--small btn--danger', text, 'aria-label': ariaLabel });
  btn.addEventListener('click', () => {
    if (armed) {
      clearTimeout(armed);
      armed = null;
      action();
      return;
    }
    btn.textContent = 'Confirm';
    btn.classList.add('btn--armed');
    armed = setTimeout(() => {
      armed = null;
      btn.textContent = text;
      btn.classList.remove('btn--armed');
    }, 3000);
  });
  return btn;
}

export function money(amount, currency = 'EUR') {
  if (typeof amount !== 'number' || !Number.isFinite(amount)) return '—';
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(amount);
  } catch {
    return `${amount.toFixed(2)} ${currency}`;
  }
}

/**
 * A form for a new record: `fields` (from dom.js `field`) and a submit button. `required` (one
 * of the fields) must not be empty: if it is, it shows `missing` and keeps the focus; else
 * `onSave(its trimmed value)` writes the record, and the form is cleared for the next one.
 */
export function composer({ label, heading, className = 'card composer', fields, required, missing, submit, onSave }) {
  const form = h('form', { class: className, novalidate: true, 'aria-label': label },
    heading ? h('h2', { class: 'composer__title', text: heading }) : null,
    ...fields.map((f) => f.wrap),
    h('div', { class: 'composer__actions' },
      h('button', { type: 'submit', class: 'btn btn--primary', testid: submit.testid, text: submit.text })));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const value = required.input.value.trim();
    if (!value) {
      required.setError(missing);
      required.input.focus();
      return;
    }
    required.setError('');
    onSave(value);
    form.reset();
    required.input.focus();
  });
  return form;
}
