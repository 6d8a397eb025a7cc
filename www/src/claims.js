// Expense claims (collection `claims`, policy server-wins-review): partial sync by role. The
// server (`ferry-server --demo`) lets a claim be read by its author (`owner`, set by the
// server) and by users with the role `manager`, and changed by its author alone; its JSON
// Schema refuses a negative amount. A manager's device holds every claim of the team, anyone
// else's only their own.
import { h, field, keyedList } from './dom.js';
import { fieldsOf } from './edits.js';
import { byCreatedDesc, writeFailed, money } from './common.js';

const COLLECTION = 'claims';

export function mountClaims(root, ctx) {
  const { ferry } = ctx;
  const description = field('Description', h('input', { maxlength: 200, placeholder: 'Taxi to the airport', testid: 'claim-description' }));
  const amount = field('Amount (EUR)', h('input', { type: 'number', inputmode: 'decimal', step: '0.01', placeholder: '0.00', testid: 'claim-amount' }));
  const form = h('form', { class: 'card composer', novalidate: true, 'aria-label': 'New expense claim' },
    h('h2', { class: 'composer__title', text: 'New expense claim' }),
    description.wrap, amount.wrap,
    h('div', { class: 'composer__actions' },
      h('button', { type: 'submit', class: 'btn btn--primary', testid: 'claim-add', text: 'Submit claim' })));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const d = description.input.value.trim();
    const raw = amount.input.value.trim();
    if (!d) {
      description.setError('Say what the claim is for.');
      return;
    }
    if (raw === '' || !Number.isFinite(Number(raw))) {
      amount.setError('Enter an amount.');
      return;
    }
    // No check for a negative amount here: the server's JSON Schema is the rule, and a refused
    // claim comes back as a dead letter in the Inbox saying why.
    ferry.put(COLLECTION, { id: ctx.newId(), description: d, amount: Number(raw), createdAt: Date.now() }).catch(writeFailed);
    form.reset();
  });

  const manager = (ctx.roles || []).includes('manager');
  const list = h('div', { class: 'cards', testid: 'claims-list', 'aria-label': 'Expense claims', role: 'list' });
  root.append(
    h('div', { class: 'view__head view__head--section' }, h('h2', { text: 'Expense claims' }),
      h('p', { class: 'muted', testid: 'claims-scope', text: manager
        ? 'As a manager you receive every claim of the team.'
        : 'Your claims: only you and the managers receive them.' })),
    h('div', { class: 'split' }, form, list));

  const render = keyedList(list, {
    create: (row) => claimRow(row, ctx),
    empty: () => h('p', { class: 'empty', text: 'No claims yet.' }),
  });
  return ferry.query(COLLECTION, {}).subscribe((rows) => render([...rows].sort(byCreatedDesc)));
}

function claimRow(row, ctx) {
  const el = h('article', { class: 'card claim', role: 'listitem', testid: 'claim-row', dataset: { id: row.id } });
  const view = (r) => {
    const f = fieldsOf(r);
    const author = f.owner || ctx.user;
    el.replaceChildren(
      h('h3', { class: 'note__title', testid: 'claim-row-description', text: f.description || '(no description)' }),
      h('p', { class: 'claim__amount', testid: 'claim-row-amount', text: money(f.amount) }),
      h('p', { class: 'muted small', testid: 'claim-row-author', text: author === ctx.user ? 'Your claim' : `Claimed by ${author}` }));
  };
  el.update = view;
  view(row);
  return el;
}
