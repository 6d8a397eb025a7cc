// Tasks (policy last-writer-wins): the later write wins; when that overwrites an edit made on
// this device, the task says so.
import { h, field, keyedList } from './dom.js';
import { fieldsOf } from './edits.js';
import { toast } from './toast.js';
import { composer, confirmButton, byCreatedDesc, writeFailed } from './common.js';

export function mountTasks(root, ctx) {
  const { ferry } = ctx;
  const title = field('Task', h('input', { name: 'title', maxlength: 200, placeholder: 'Replace the gate sensor', testid: 'task-title' }));
  const assignee = field('Assignee', h('input', { name: 'assignee', maxlength: 40, placeholder: 'optional', testid: 'task-assignee' }));
  const form = composer({
    label: 'New task', className: 'card composer composer--row', fields: [title, assignee], required: title,
    missing: 'Say what needs doing.', submit: { testid: 'task-add', text: 'Add task' },
    onSave: (t) => {
      ferry.put('tasks', {
        id: ctx.newId(), title: t, done: false, assignee: assignee.input.value.trim(),
        createdAt: Date.now(), updatedBy: ctx.user,
      }).catch(writeFailed);
    },
  });

  const openList = h('ul', { class: 'tasks', testid: 'tasks-list', 'aria-label': 'Open tasks' });
  const doneList = h('ul', { class: 'tasks tasks--done', 'aria-label': 'Done tasks' });
  const doneHead = h('h2', { class: 'section-title', text: 'Done' });
  root.append(
    h('div', { class: 'view__head' }, h('h1', { text: 'Tasks' }),
      h('p', { class: 'muted', text: 'When two people change the same task, the later change wins.' })),
    form,
    h('div', { class: 'card list-card' }, openList, doneHead, doneList));

  const cards = new Map();
  const make = (row) => {
    const el = taskItem(row, ctx);
    cards.set(row.id, el);
    return el;
  };
  const renderOpen = keyedList(openList, { create: make, empty: () => h('li', { class: 'empty', text: 'Nothing to do. Enjoy the quiet.' }) });
  const renderDone = keyedList(doneList, { create: make });
  const unsub = ferry.query('tasks', {}).subscribe((rows) => {
    const sorted = [...rows].sort(byCreatedDesc);
    const open = sorted.filter((r) => !fieldsOf(r).done);
    const done = sorted.filter((r) => fieldsOf(r).done);
    ctx.counts('tasks', open.length);
    // An item moving between the lists is re-created in the other one.
    for (const r of open) if (cards.get(r.id)?.parentElement === doneList) cards.get(r.id).remove();
    renderOpen(open);
    for (const r of done) if (cards.get(r.id)?.parentElement === openList) cards.get(r.id).remove();
    renderDone(done);
    doneHead.hidden = done.length === 0;
    for (const row of sorted) {
      const change = ctx.tracker.observe('tasks', row);
      if (change && change.lost.length) {
        const f = fieldsOf(row);
        const who = f.updatedBy && f.updatedBy !== ctx.user ? f.updatedBy : 'another device';
        cards.get(row.id)?.showReplaced(who);
        toast(`“${f.title}”: a later change by ${who} replaced yours (last writer wins).`, 'info', { testid: 'lww-toast' });
      }
    }
  });
  return unsub;
}

function taskItem(row, ctx) {
  const { ferry } = ctx;
  let current = row;
  let editing = false;
  const el = h('li', { class: 'task', testid: 'task-item', dataset: { id: row.id } });
  const notice = h('p', { class: 'task__notice', role: 'status', testid: 'lww-notice', hidden: true });

  el.showReplaced = (who) => {
    notice.textContent = `Updated by ${who} after your edit — the later change wins.`;
    notice.hidden = false;
    clearTimeout(el._noticeTimer);
    el._noticeTimer = setTimeout(() => { notice.hidden = true; }, 60_000);
  };

  function write(patch) {
    const before = fieldsOf(current);
    const full = { ...patch, updatedBy: ctx.user };
    ctx.tracker.wrote('tasks', current.id, before, full);
    current = { ...current, ...full };
    ferry.patch('tasks', current.id, full).catch(writeFailed);
  }

  function view() {
    const f = fieldsOf(current);
    const boxId = `task-${current.id}`;
    el.classList.toggle('task--done', !!f.done);
    el.replaceChildren(
      h('div', { class: 'task__row' },
        h('input', { type: 'checkbox', id: boxId, checked: !!f.done, testid: 'task-done', onchange: (e) => write({ done: e.target.checked }) }),
        h('label', { for: boxId, class: 'task__title', testid: 'task-item-title', text: f.title || 'Untitled' }),
        f.assignee ? h('span', { class: 'chip', text: f.assignee }) : null,
        h('span', { class: 'task__actions' },
          h('button', { type: 'button', class: 'btn btn--ghost btn--small', testid: 'task-edit', text: 'Edit', 'aria-label': `Edit task ${f.title || ''}`, onclick: edit }),
          confirmButton('Delete', `Delete task ${f.title || ''}`, () => ferry.delete('tasks', current.id).catch(writeFailed)))),
      notice);
  }

  function edit() {
    editing = true;
    const f = fieldsOf(current);
    const t = field('Task', h('input', { value: f.title || '', maxlength: 200, testid: 'task-edit-title' }));
    const a = field('Assignee', h('input', { value: f.assignee || '', maxlength: 40, testid: 'task-edit-assignee' }));
    const form = h('form', { class: 'task__edit', novalidate: true, 'aria-label': 'Edit task' }, t.wrap, a.wrap,
      h('div', { class: 'composer__actions' },
        h('button', { type: 'button', class: 'btn btn--ghost', text: 'Cancel', onclick: () => { editing = false; view(); } }),
        h('button', { type: 'submit', class: 'btn btn--primary', testid: 'task-save', text: 'Save' })));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const title = t.input.value.trim();
      if (!title) {
        t.setError('A task needs a title.');
        return;
      }
      const patch = {};
      if (title !== (f.title || '')) patch.title = title;
      if (a.input.value.trim() !== (f.assignee || '')) patch.assignee = a.input.value.trim();
      editing = false;
      if (Object.keys(patch).length) write(patch);
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
