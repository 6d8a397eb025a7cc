// Ferry Field: the sample app of the Ferry sync engine.
//
// A field team's notes (merge-fields), tasks (last-writer-wins) and expenses
// (server-wins-review), with the sync state always in view, a conflict inbox, dead letters,
// an offline switch, and a service worker so the app opens without a network.
import { Ferry, init } from 'ferry';
import { $, newId, initials, hue } from './dom.js';
import { loadSession, saveSession, clearSession, requestToken, normalizeName, tokenProvider, SignInError, API_BASE } from './session.js';
import { switchableFetch, isOffline, setOffline } from './net.js';
import { mountSyncBar } from './syncbar.js';
import { mountNotes } from './notes.js';
import { mountTasks } from './tasks.js';
import { mountExpenses } from './expenses.js';
import { mountPrivateNotes } from './private-notes.js';
import { mountClaims } from './claims.js';
import { mountInbox, History } from './inbox.js';
import { EditTracker } from './edits.js';
import { toast } from './toast.js';

export const COLLECTION_POLICIES = {
  notes: { policy: 'merge-fields' },
  tasks: { policy: 'last-writer-wins' },
  expenses: { policy: 'server-wins-review' },
  // Partial sync (the server's --demo permissions): each device holds only what its user may read.
  private_notes: { policy: 'merge-fields' },
  claims: { policy: 'server-wins-review' },
};

registerServiceWorker();

const bootEl = $('#boot');
const bootMsg = $('#boot-message');

function showScreen(which) {
  bootEl.hidden = which !== 'boot';
  $('#signin').hidden = which !== 'signin';
  $('#app').hidden = which !== 'app';
}

function bootError(message, err) {
  console.error(message, err);
  showScreen('boot');
  bootEl.classList.add('boot--error');
  bootMsg.textContent = `${message}${err ? `: ${err.message || err}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Sign-in.

function showSignIn(prefill = '') {
  showScreen('signin');
  const form = $('#signin-form');
  const input = $('#signin-name');
  const error = $('#signin-error');
  const submit = form.querySelector('button[type="submit"]');
  input.value = prefill;
  input.focus();
  form.onsubmit = async (e) => {
    e.preventDefault();
    const user = normalizeName(input.value);
    if (!user) {
      error.textContent = 'Enter your name (letters and digits).';
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      return;
    }
    error.hidden = true;
    input.removeAttribute('aria-invalid');
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    const roles = $('#signin-manager').checked ? ['manager'] : [];
    let session;
    try {
      session = { user, roles, token: await requestToken(user, roles) };
      saveSession(session);
    } catch (err) {
      error.textContent = err instanceof SignInError ? err.message : `Sign-in failed: ${err.message || err}`;
      error.hidden = false;
      return;
    } finally {
      submit.disabled = false;
      submit.textContent = 'Sign in';
    }
    start(session).catch((err) => bootError('Could not open Ferry Field', err));
  };
}

// ---------------------------------------------------------------------------------------------
// The app.

let wasmReady = null;
function loadEngine() {
  wasmReady ??= init();
  return wasmReady;
}

async function start(session) {
  showScreen('boot');
  bootMsg.textContent = 'Opening your workspace…';
  await loadEngine();
  const ferry = await Ferry.open({
    name: `ferry-field-${session.user}`,
    url: API_BASE,
    getToken: tokenProvider(session),
    collections: COLLECTION_POLICIES,
    fetch: switchableFetch,
    // Writes left when the tab closes go out from the service worker (www/sw.js).
    backgroundSync: true,
  });
  window.ferry = ferry;
  tellServiceWorker(session);
  // The switch survived a reload: tell the engine at once.
  if (isOffline()) setOffline(true, ferry);
  mountApp(ferry, session);
}

function mountApp(ferry, session) {
  const history = new History(session.user);
  const tracker = new EditTracker();
  const inbox = { conflicts: [], deadLetters: [] };
  const inboxListeners = new Set();
  const notifyInbox = () => {
    for (const fn of inboxListeners) fn(inbox);
    const n = inbox.conflicts.length + inbox.deadLetters.length;
    const count = $('#count-inbox');
    count.textContent = n ? String(n) : '';
    count.hidden = !n;
    $('#tab-inbox').setAttribute('aria-label', n ? `Inbox, ${n} need${n === 1 ? 's' : ''} attention` : 'Inbox');
  };

  const ctx = {
    ferry,
    user: session.user,
    roles: session.roles || [],
    newId,
    tracker,
    history,
    inbox,
    onInbox(fn) {
      inboxListeners.add(fn);
      fn(inbox);
      return () => inboxListeners.delete(fn);
    },
    flagsFor(collection, id) {
      return {
        conflict: inbox.conflicts.some((c) => c.collection === collection && c.recordId === id),
        deadLetter: inbox.deadLetters.some((l) => l.collection === collection && l.recordId === id),
      };
    },
    counts(view, n) {
      const el = $(`#count-${view}`);
      if (el) el.textContent = n ? String(n) : '';
    },
    show,
  };

  // User.
  $('#user-name').textContent = session.user;
  const role = $('#user-role');
  if (role) {
    role.textContent = (session.roles || []).join(', ');
    role.hidden = !(session.roles || []).length;
  }
  const avatar = $('#user-avatar');
  avatar.textContent = initials(session.user);
  avatar.style.setProperty('--hue', hue(session.user));
  $('#signout').onclick = async () => {
    try {
      await ferry.close();
    } catch { /* closing anyway */ }
    clearSession();
    // Before the reload: the worker must forget the session (and its token) for sure.
    await tellServiceWorker(null);
    location.reload();
  };

  // Tabs (arrow keys move between them, as the ARIA tabs pattern says).
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  function show(view) {
    for (const tab of tabs) {
      const on = tab.dataset.view === view;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
      $(`#view-${tab.dataset.view}`).hidden = !on;
    }
    if (location.hash !== `#${view}`) history_replace(view);
  }
  for (const tab of tabs) {
    tab.addEventListener('click', () => show(tab.dataset.view));
    tab.addEventListener('keydown', (e) => {
      const i = tabs.indexOf(tab);
      const next = e.key === 'ArrowRight' ? tabs[(i + 1) % tabs.length] : e.key === 'ArrowLeft' ? tabs[(i - 1 + tabs.length) % tabs.length] : null;
      if (next) {
        e.preventDefault();
        show(next.dataset.view);
        next.focus();
      }
    });
  }

  mountSyncBar(ferry, { onSignInNeeded: () => { clearSession(); location.reload(); } });

  // Merge detection: an edit can only be merged until it is on the server.
  ferry.syncState.subscribe((s) => {
    if (s && (s.outboxDepth || 0) === 0 && !s.inFlight && s.status !== 'syncing') tracker.allAcked();
  });

  let closeConflictToast = null;
  let closeLetterToast = null;
  ferry.conflicts.subscribe((list) => {
    const prev = inbox.conflicts.length;
    inbox.conflicts = [...(list || [])];
    notifyInbox();
    if (inbox.conflicts.length > prev) closeConflictToast = toast('A change needs your review — see the Inbox.', 'warn', { testid: 'conflict-toast' });
    if (inbox.conflicts.length === 0) closeConflictToast?.();
  });
  ferry.deadLetters.subscribe((list) => {
    const prev = inbox.deadLetters.length;
    inbox.deadLetters = [...(list || [])];
    notifyInbox();
    if (inbox.deadLetters.length > prev) closeLetterToast = toast('The server refused a change — see the Inbox.', 'error', { testid: 'dead-letter-toast' });
    if (inbox.deadLetters.length === 0) closeLetterToast?.();
  });

  mountNotes($('#view-notes'), ctx);
  mountPrivateNotes($('#view-notes'), ctx);
  mountTasks($('#view-tasks'), ctx);
  mountExpenses($('#view-expenses'), ctx);
  mountClaims($('#view-expenses'), ctx);
  mountInbox($('#view-inbox'), ctx);

  const initial = location.hash.slice(1);
  show(['notes', 'tasks', 'expenses', 'inbox'].includes(initial) ? initial : 'notes');
  window.addEventListener('hashchange', () => {
    const v = location.hash.slice(1);
    if (['notes', 'tasks', 'expenses', 'inbox'].includes(v)) show(v);
  });
  showScreen('app');
  document.documentElement.dataset.ready = 'true';
}

function history_replace(view) {
  window.history.replaceState(null, '', `#${view}`);
}

// ---------------------------------------------------------------------------------------------

function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  // A page that was already controlled and gets a new worker runs the old version until a
  // reload: say so, and let the person choose when.
  let controlled = !!navigator.serviceWorker.controller;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (controlled) {
      toast('Ferry Field was updated.', 'info', { timeout: 0, action: { label: 'Reload', run: () => location.reload() } });
    }
    controlled = true;
  });
  window.addEventListener('load', () => {
    // A module worker: it imports Ferry's flush (ferry-sync/sw) for sync with the app closed.
    navigator.serviceWorker
      // updateViaCache 'none': an update fetches sw.js and its ferry/ imports past the HTTP
      // cache, so the worker's modules are always the release's (see www/sw.js).
      .register('/sw.js', { type: 'module', updateViaCache: 'none' })
      .catch((err) => console.warn('service worker not registered', err));
  });
}

/**
 * Names the signed-in person (null: nobody) to the service worker, which pushes their outbox
 * with the app closed. Resolves once the message is posted (or after a second without a
 * worker); never rejects (no worker: no sync with the app closed, the fallback of flushing on
 * hide and on the next open holds).
 */
function tellServiceWorker(session) {
  if (!('serviceWorker' in navigator)) return Promise.resolve();
  const message = { type: 'ferry-field-session', session: session && { user: session.user, token: session.token, collections: COLLECTION_POLICIES } };
  const posted = navigator.serviceWorker.ready.then((reg) => reg.active?.postMessage(message)).catch(() => {});
  // `ready` never settles when the worker failed to register: do not hold a sign-out for it.
  return Promise.race([posted, new Promise((resolve) => setTimeout(resolve, 1000))]);
}

async function main() {
  const session = loadSession();
  if (!session) {
    showSignIn();
    return;
  }
  try {
    await start(session);
  } catch (err) {
    bootError('Could not open Ferry Field', err);
  }
}

main().catch((err) => bootError('Could not start', err));
window.addEventListener('unhandledrejection', (e) => console.error('unhandled', e.reason));
