// The always-visible sync state: badge, outbox depth, last synced, "Sync now", offline switch.
import { $, relativeTime, formatTimestamp } from './dom.js';
import { isOffline, setOffline, onNetworkSwitch } from './net.js';
import { toast } from './toast.js';

/** What the badge says for a sync state. Returns {key, text}. */
export function describeStatus(s, now = Date.now()) {
  if (!s) return { key: 'syncing', text: 'Starting…' };
  const depth = s.outboxDepth || 0;
  switch (s.status) {
    case 'syncing':
      return { key: 'syncing', text: syncingText(s.progress) };
    case 'offline':
      return { key: 'offline', text: depth ? `Offline · ${depth} waiting` : 'Offline' };
    case 'backoff': {
      const secs = s.nextRetryAt ? Math.max(0, Math.ceil((s.nextRetryAt - now) / 1000)) : null;
      return { key: 'backoff', text: secs === null ? 'Retrying soon' : secs === 0 ? 'Retrying now' : `Retrying in ${secs} s` };
    }
    case 'error':
      return { key: 'error', text: 'Sync error' };
    case 'auth-required':
      return { key: 'auth', text: 'Sign-in needed' };
    default:
      if (s.online === false) return { key: 'offline', text: depth ? `Offline · ${depth} waiting` : 'Offline' };
      if (depth > 0 || s.inFlight > 0) return { key: 'pending', text: 'Changes pending' };
      return { key: 'synced', text: 'Synced' };
  }
}

function syncingText(p) {
  if (p && p.pushTotal > 1) return `Sending ${Math.min(p.pushed, p.pushTotal)}/${p.pushTotal}…`;
  if (p && p.pullEstimate > 50) return `Receiving ${p.pulled}/${p.pulled + p.pullEstimate}…`;
  return 'Syncing…';
}

export function mountSyncBar(ferry, { onSignInNeeded }) {
  const badge = $('#sync-badge');
  const badgeText = $('#sync-badge-text');
  const depthEl = $('#outbox-depth');
  const lastEl = $('#last-synced');
  const syncBtn = $('#sync-now');
  const offlineSwitch = $('#offline-switch');
  const errorBox = $('#sync-error');
  const footer = $('#footer-info');
  let current = null;

  function render() {
    const s = current;
    const { key, text } = describeStatus(s);
    badge.dataset.status = key;
    badge.className = `badge badge--${key}`;
    badgeText.textContent = text;
    depthEl.textContent = String(s?.outboxDepth ?? 0);
    depthEl.parentElement.classList.toggle('syncbar__meta--busy', (s?.outboxDepth ?? 0) > 0);
    lastEl.textContent = relativeTime(s?.lastSyncedAt);
    if (s?.lastSyncedAt) {
      lastEl.dateTime = new Date(s.lastSyncedAt).toISOString();
      lastEl.title = formatTimestamp(s.lastSyncedAt);
    }
    offlineSwitch.checked = isOffline();
    if (s) {
      const parts = [s.isLeader ? 'This tab syncs for every open tab' : 'Another open tab is syncing'];
      if (s.storage) parts.push(s.storage.persisted ? 'storage: persistent' : 'storage: best effort');
      if (s.conflicts || s.deadLetters) parts.push(`${s.conflicts} to review, ${s.deadLetters} refused`);
      footer.textContent = `Ferry Field · ${parts.join(' · ')}`;
    }
    syncBtn.disabled = key === 'syncing';
    if (s && (s.status === 'error' || s.status === 'auth-required') && s.lastError) {
      errorBox.hidden = false;
      errorBox.replaceChildren();
      errorBox.append(
        s.status === 'auth-required' ? 'The server no longer accepts your sign-in. ' : 'Sync stopped: ',
        s.lastError,
      );
      if (s.status === 'auth-required') {
        const btn = document.createElement('button');
        btn.className = 'btn btn--small';
        btn.textContent = 'Sign in again';
        btn.addEventListener('click', () => onSignInNeeded?.());
        errorBox.append(' ', btn);
      }
    } else {
      errorBox.hidden = true;
    }
  }

  const unsub = ferry.syncState.subscribe((s) => {
    current = s;
    render();
  });
  // Countdown ("retrying in N s") and "last synced" tick.
  const timer = setInterval(render, 1000);

  syncBtn.addEventListener('click', async () => {
    if (isOffline()) {
      toast('You are working offline. Turn the Offline switch off to sync.', 'info');
      return;
    }
    ferry.syncNow();
  });
  offlineSwitch.addEventListener('change', () => {
    setOffline(offlineSwitch.checked, ferry);
    toast(offlineSwitch.checked ? 'Working offline: changes stay on this device.' : 'Back online: syncing…', 'info');
  });
  const unsubSwitch = onNetworkSwitch(render);
  render();
  return () => {
    unsub();
    unsubSwitch();
    clearInterval(timer);
  };
}
