// Sign-in for the demo tenant: a name is exchanged for a bearer token at POST /v1/demo/token.
// The session (name + token) lives in localStorage so the app opens offline next time.

const KEY = 'ferry-field.session';
export const API_BASE = '/v1';

export function loadSession() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY) || 'null');
    return s && typeof s.user === 'string' && s.user ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  localStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession() {
  localStorage.removeItem(KEY);
}

/** Names become user ids: lower case, letters, digits, `-`, `_`, `.`. */
export function normalizeName(name) {
  return (name || '').trim().toLowerCase().replace(/\s+/g, '-').replace(/[^a-z0-9._-]/g, '');
}

export class SignInError extends Error {}

/** Asks the server for a demo token (with `roles`, e.g. `['manager']`). Throws SignInError with a message fit for the user. */
export async function requestToken(user, roles = []) {
  let response;
  try {
    response = await fetch(`${API_BASE}/demo/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user, roles }),
    });
  } catch {
    throw new SignInError('Cannot reach the server. Check your connection and try again.');
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON */
  }
  if (!response.ok || !body || typeof body.token !== 'string') {
    const reason = body?.error?.message || `the server answered ${response.status}`;
    throw new SignInError(`Sign-in failed: ${reason}.`);
  }
  return body.token;
}

/**
 * The engine's token callback: the stored token, or a fresh one when `refresh` is true
 * (the server said 401) or none is stored. Offline, the stored token is the best there is.
 */
export function tokenProvider(session, onRefreshFailed) {
  return async (refresh) => {
    if (!refresh && session.token) return session.token;
    try {
      session.token = await requestToken(session.user, session.roles || []);
      saveSession(session);
      return session.token;
    } catch (err) {
      onRefreshFailed?.(err);
      if (session.token && !refresh) return session.token;
      throw err;
    }
  };
}
