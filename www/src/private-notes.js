// Private notes (collection `private_notes`, policy merge-fields): partial sync in the app.
// The server (`ferry-server --demo`) lets a private note be read by its owner and by the
// colleagues named in its `shared_with` list, and changed by its owner alone; it sets `owner`
// itself. So this device only ever holds the user's own notes and the ones shared with them;
// unsharing removes a note from the colleague's device, and a colleague's edit of a shared note
// comes back as a dead letter (Inbox) saying why.
import { h, field, keyedList, relativeTime } from './dom.js';
import { fieldsOf } from './edits.js';
import { composer, confirmButton, byCreatedDesc, writeFailed } from './common.js';

const COLLECTION = 'private_notes';

/** "bob, carol" → ['bob', 'carol']: user names as sign-in makes them, without `owner`'s. */
export function parseShareList(text, owner) {
  const names = String(text || '')
    .split(/[\s,;]+/)
    .map((n) => n.trim().toLowerCase().replace(/[^a-z0-9._-]/g, ''))
    .filter((n) => n && n !== owner);
  return [...new Set(names)];
}

function sharedWith(f) {
  return Array.isArray(f.shared_with) ? f.shared_with.filter((n) => typeof n === 'string') : [];
}

export function mountPrivateNotes(root, ctx) {
  const { ferry } = ctx;
  const title = field('Title', h('input', { maxlength: 200, placeholder: 'Handover for the night shift', testid: 'private-title' }));
  const body = field('Note', h('textarea', { rows: 2, testid: 'private-body' }));
  const share = field('Share with', h('input', { maxlength: 200, placeholder: 'bob, carol', testid: 'private-share' }),
    'Names of colleagues, separated by commas. Leave empty to keep the note to yourself.');
  const form = composer({
    label: 'New private note', heading: 'New private note', fields: [title, body, share], required: title,
    missing: 'Give the note a title.', submit: { testid: 'private-add', text: 'Add private note' },
    onSave: (t) => {
      const record = {
        id: ctx.newId(),
        title: t,
        body: body.input.value,
        shared_with: parseShareList(share.input.value, ctx.user),
        createdAt: Date.now(),
      };
      ferry.put(COLLECTION, record).catch(writeFailed);
    },
  });

  const list = h('div', { class: 'cards', testid: 'private-list', 'aria-label': 'Private notes', role: 'list' });
  root.append(
    h('div', { class: 'view__head view__head--section' }, h('h2', { text: 'Private notes' }),
      h('p', { class: 'muted', text: 'Only you and the colleagues you share a note with receive it: nobody else\'s device ever stores it.' })),
    h('div', { class: 'split' }, form, list));

  const render = keyedList(list, {
    create: (row) => privateCard(row, ctx),
    empty: () => h('p', { class: 'empty', text: 'No private notes. Notes shared with you appear here too.' }),
  });
  return ferry.query(COLLECTION, {}).subscribe((rows) => render([...rows].sort(byCreatedDesc)));
}

function privateCard(row, ctx) {
  const { ferry } = ctx;
  let current = row;
  let editing = false;
  const el = h('article', { class: 'card note', role: 'listitem', testid: 'private-card', dataset: { id: row.id } });

  function view() {
    editing = false;
    const f = fieldsOf(current);
    // A note not yet on the server has no owner yet: it is the user's own.
    const owner = f.owner || ctx.user;
    const mine = owner === ctx.user;
    const names = sharedWith(f);
    const who = mine
      ? names.length ? `Shared with ${names.join(', ')}` : 'Private: only you'
      : `Shared with you by ${owner} · read-only`;
    el.replaceChildren(
      h('h3', { class: 'note__title', testid: 'private-card-title', text: f.title || 'Untitled' }),
      f.body ? h('p', { class: 'note__body', text: f.body }) : null,
      h('p', { class: `badge ${names.length ? 'badge--shared' : 'badge--private'}`, testid: 'private-card-sharing', text: who }),
      h('div', { class: 'card__foot' },
        h('span', { class: 'muted small', text: relativeTime(f.createdAt) }),
        h('span', { class: 'card__actions' },
          h('button', { type: 'button', class: 'btn btn--ghost btn--small', testid: 'private-edit', text: 'Edit', onclick: edit }),
          mine ? confirmButton('Delete', `Delete note ${f.title || ''}`, () => ferry.delete(COLLECTION, current.id).catch(writeFailed)) : null)));
  }

  function edit() {
    editing = true;
    const before = fieldsOf(current);
    const t = field('Title', h('input', { value: before.title || '', maxlength: 200, testid: 'private-edit-title' }));
    const s = field('Share with', h('input', { value: sharedWith(before).join(', '), maxlength: 200, testid: 'private-edit-share' }));
    const form = h('form', { class: 'note__edit', novalidate: true, 'aria-label': 'Edit private note' }, t.wrap, s.wrap,
      h('div', { class: 'composer__actions' },
        h('button', { type: 'button', class: 'btn btn--ghost', text: 'Cancel', onclick: view }),
        h('button', { type: 'submit', class: 'btn btn--primary', testid: 'private-save', text: 'Save' })));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const patch = {};
      const title = t.input.value.trim();
      if (title && title !== before.title) patch.title = title;
      // The owner is never on their own share list; anyone else's name stays as typed.
      const names = parseShareList(s.input.value, before.owner || ctx.user);
      if (names.join(',') !== sharedWith(before).join(',')) patch.shared_with = names;
      if (Object.keys(patch).length) {
        current = { ...current, ...patch };
        // Sent as the user typed it; the server decides (a colleague's edit is refused).
        ferry.patch(COLLECTION, current.id, patch).catch(writeFailed);
      }
      view();
    });
    el.replaceChildren(form);
    t.input.focus();
  }

  el.update = (next) => {
    current = next;
    if (!editing) view();
  };
  view();
  return el;
}
