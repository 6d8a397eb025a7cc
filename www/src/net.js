// The app's "Offline" switch: simulates a lost connection for the sync engine.
//
// Ferry.open takes a fetch-compatible `fetch` option; the app passes `switchableFetch`, which
// fails every request the way a dropped network does (a TypeError) while the switch is on.
// Flipping the switch also sends the engine the browser's own `offline` / `online` events, so
// it shows "offline" at once and syncs at once when the switch goes off.
// The switch is remembered per tab (sessionStorage), so a reload stays offline.

const STORE_KEY = 'ferry-field.offline';

const state = {
  offline: sessionStorage.getItem(STORE_KEY) === '1',
  listeners: new Set(),
};

/** The `fetch` the engine uses. */
export function switchableFetch(input, init) {
  if (state.offline) return Promise.reject(new TypeError('Failed to fetch (the Offline switch is on)'));
  return fetch(input, init);
}

export function isOffline() {
  return state.offline;
}

export function onNetworkSwitch(fn) {
  state.listeners.add(fn);
  return () => state.listeners.delete(fn);
}

/** Turns the simulated disconnection on or off; `ferry` (optional) is asked to sync when back. */
export function setOffline(offline, ferry) {
  offline = !!offline;
  const changed = offline !== state.offline;
  state.offline = offline;
  sessionStorage.setItem(STORE_KEY, offline ? '1' : '0');
  window.dispatchEvent(new Event(offline ? 'offline' : 'online'));
  if (!offline && navigator.onLine !== false) ferry?.syncNow();
  if (changed) for (const fn of state.listeners) fn(offline);
}
