// Notes (policy merge-fields): edits of different fields on two devices are merged; the card
// says so with a "merged update" banner.
import { h, field, keyedList, relativeTime, formatTimestamp } from './dom.js';
import { fieldsOf } from './edits.js';
import { toast } from './toast.js';
import { composer, confirmButton, byCreatedDesc, writeFailed, fieldLabel } from './common.js';

export function mountNotes(root, ctx) {
  const { ferry } = ctx;

  // Composer.
  const title = field('Title', h('input', { name: 'title', maxlength: 200, placeholder: 'Site visit — north pump station', testid: 'note-title' }));
  const body = field('Note', h('textarea', { name: 'body', rows: 3, placeholder: 'What did you see? What needs doing?', testid: 'note-body' }));
  const form = composer({
    label: 'New note', heading: 'New note', fields: [title, body], required: title, missing: 'Give the note a title.',
    submit: { testid: 'note-add', text: 'Add note' },
    onSave: (t) => {
      const record = { id: ctx.newId(), title: t, body: body.input.value, author: ctx.user, createdAt: Date.now() };
      ferry.put('notes', record).catch(writeFailed);
    },
  });

  const list = h('div', { class: 'cards', testid: 'notes-list', 'aria-label': 'Notes', role: 'list' });
  root.append(
    h('div', { class: 'view__head' }, h('h1', { text: 'Notes' }),
      h('p', { class: 'muted', text: 'Edits of different fields on two devices are merged automatically.' })),
    h('div', { class: 'split' }, form, list));

  const render = keyedList(list, {
    create: (row) => noteCard(row, ctx),
    empty: () => h('p', { class: 'empty', text: 'No notes yet. Write the first one — it is saved on this device at once.' }),
  });
  let rowsById = new Map();
  const unsub = ferry.query('notes', {}).subscribe((rows) => {
    const sorted = [...rows].sort(byCreatedDesc);
    rowsById = new Map(sorted.map((r) => [r.id, r]));
    ctx.counts('notes', sorted.length);
    render(sorted);
  });
  // The banner follows Ferry's own word that a change was merged (the `outcomes` observable),
  // not a guess from how the record changed; the edit tracker only names the fields.
  let seenSeq = null;
  const unsubOutcomes = ferry.outcomes.subscribe((outcomes) => {
    const items = outcomes || [];
    const newest = items.length ? items[items.length - 1].seq : 0;
    if (seenSeq === null) {
      seenSeq = newest; // those happened before this view was shown
      return;
    }
    for (const o of items) {
      if (o.seq <= seenSeq || o.kind !== 'merged' || o.collection !== 'notes') continue;
      const row = rowsById.get(o.id);
      const change = row ? ctx.tracker.observe('notes', row) : null;
      list.querySelector(`[data-id="${CSS.escape(o.id)}"]`)?.showMerge(change || { theirs: [], kept: [] });
    }
    seenSeq = Math.max(seenSeq, newest);
  });
  return () => {
    unsub();
    unsubOutcomes();
  };
}

function noteCard(row, ctx) {
  const { ferry } = ctx;
  let current = row;
  let editing = false;
  const el = h('article', { class: 'card note', role: 'listitem', testid: 'note-card', dataset: { id: row.id } });
  const banner = h('div', { class: 'banner banner--merge', role: 'status', testid: 'merge-banner', hidden: true });
  const content = h('div', { class: 'note__content' });
  el.append(banner, content);

  el.showMerge = ({ theirs, kept }) => {
    banner.replaceChildren(
      h('span', { class: 'banner__icon', 'aria-hidden': 'true', text: '⇄' }),
      h('span', { class: 'banner__text' },
        h('strong', { text: 'Merged update. ' }),
        kept.length && theirs.length
          ? `Your change to ${kept.map(fieldLabel).join(', ')} was combined with another device's change to ${theirs.map(fieldLabel).join(', ')}.`
          : "Your change was combined with another device's change."),
      h('button', { type: 'button', class: 'banner__close', 'aria-label': 'Dismiss', text: '×', onclick: () => { banner.hidden = true; } }));
    banner.hidden = false;
  };

  function view() {
    const f = fieldsOf(current);
    content.replaceChildren(
      h('h3', { class: 'note__title', testid: 'note-card-title', text: f.title || 'Untitled' }),
      f.body ? h('p', { class: 'note__body', testid: 'note-card-body', text: f.body }) : h('p', { class: 'note__body muted', testid: 'note-card-body', text: 'No text' }),
      h('div', { class: 'card__foot' },
        h('span', { class: 'muted small', title: formatTimestamp(f.createdAt), text: `${f.author ? `by ${f.author} · ` : ''}${relativeTime(f.createdAt)}` }),
        h('span', { class: 'card__actions' },
          h('button', { type: 'button', class: 'btn btn--ghost btn--small', testid: 'note-edit', text: 'Edit', 'aria-label': `Edit note ${f.title || ''}`, onclick: edit }),
          confirmButton('Delete', `Delete note ${f.title || ''}`, () => ferry.delete('notes', current.id).catch(writeFailed)))));
  }

  function edit() {
    editing = true;
    const before = fieldsOf(current);
    const t = field('Title', h('input', { value: before.title || '', maxlength: 200, testid: 'note-edit-title' }));
    const b = field('Note', h('textarea', { rows: 5, testid: 'note-edit-body' }));
    b.input.value = before.body || '';
    const form = h('form', { class: 'note__edit', novalidate: true, 'aria-label': 'Edit note' }, t.wrap, b.wrap,
      h('div', { class: 'composer__actions' },
        h('button', { type: 'button', class: 'btn btn--ghost', text: 'Cancel', onclick: () => { editing = false; view(); } }),
        h('button', { type: 'submit', class: 'btn btn--primary', testid: 'note-save', text: 'Save' })));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const title = t.input.value.trim();
      if (!title) {
        t.setError('A note needs a title.');
        return;
      }
      // Only the fields this edit changed go out: that is what lets merge-fields combine them
      // with another device's changes to other fields.
      const patch = {};
      if (title !== (before.title || '')) patch.title = title;
      if (b.input.value !== (before.body || '')) patch.body = b.input.value;
      editing = false;
      if (Object.keys(patch).length) {
        ctx.tracker.wrote('notes', current.id, before, patch);
        current = { ...current, ...patch };
        ferry.patch('notes', current.id, patch).catch(writeFailed);
      }
      view();
    });
    content.replaceChildren(form);
    t.input.focus();
  }

  el.update = (next) => {
    current = next;
    if (!editing) view();
    else el.classList.add('note--changed-elsewhere');
  };
  view();
  return el;
}

