/* Ferry Field service worker: a cache-first app shell, and Ferry's push with the app closed.
 *
 * Registered as a module worker, it imports `ferrySync` from the package (copied to /ferry/ by
 * the build): when the Background Sync tag fires — the page registers it while writes wait —
 * it pushes the outbox of the signed-in person, whom the page names in a message (kept in a
 * small cache, since a worker is stopped and started again between events).
 *
 * Offline and on update: the static imports (ferry/*.js) are part of the worker's own script
 * graph, which the browser stores with the worker when it installs and evaluates from there
 * on every start, network or not; the page registers with `updateViaCache: 'none'` so a new
 * release never pairs a new sw.js with stale ferry/ modules from the HTTP cache. The engine's
 * WebAssembly is the page's own precached file (placeholder below), so a wake-up needs no
 * second download and the worker's JS and wasm always come from the same build.
 *
 * The build (webpack.config.js) replaces the three placeholders below with the list of files
 * the build emitted (HTML, JS bundle, WebAssembly, CSS, manifest, icons), the URL of the
 * engine's WebAssembly, and a hash of their contents, so every build that changes a file
 * installs a new cache and drops the old one.
 * The sync API (/v1/...) never touches the cache: it always goes to the network, and the
 * engine copes with a failure on its own (it keeps the outbox and retries).
 */
import { init } from './ferry/index.js';
import { ferrySync } from './ferry/sw.js';

const PRECACHE = self.__FERRY_PRECACHE__;
const ENGINE_WASM = self.__FERRY_WASM__;
const VERSION = self.__FERRY_VERSION__;
const CACHE = `ferry-field-shell-${VERSION}`;

// ---- sync with the app closed --------------------------------------------------------------
const SESSION_CACHE = 'ferry-field-session';
const SESSION_URL = '/__ferry-field-session';

async function loadSession() {
  const hit = await (await caches.open(SESSION_CACHE)).match(SESSION_URL);
  return hit ? hit.json() : null;
}

self.addEventListener('message', (event) => {
  const data = event.data;
  if (!data || data.type !== 'ferry-field-session') return;
  event.waitUntil((async () => {
    const cache = await caches.open(SESSION_CACHE);
    if (data.session) await cache.put(SESSION_URL, new Response(JSON.stringify(data.session)));
    else await cache.delete(SESSION_URL);
  })());
});

async function demoToken(user) {
  const response = await fetch('/v1/demo/token', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  if (!response.ok) throw new Error(`demo token: ${response.status}`);
  return (await response.json()).token;
}

/** Loads the engine from the precached WebAssembly (the network only if the cache lost it). */
async function loadEngine() {
  const cached = await (await caches.open(CACHE)).match(ENGINE_WASM);
  await init(cached ?? ENGINE_WASM);
}

ferrySync(async () => {
  const session = await loadSession();
  if (!session) return null;
  await loadEngine();
  return {
    name: `ferry-field-${session.user}`,
    url: '/v1',
    collections: session.collections,
    getToken: async (refresh) => (!refresh && session.token ? session.token : demoToken(session.user)),
  };
});

// ---- the app shell ------------------------------------------------------------------------
self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // `reload`: skip the HTTP cache, so the new shell is really the new one.
    await cache.addAll(PRECACHE.map((url) => new Request(url, { cache: 'reload' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith('ferry-field-shell-') && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  // The sync API: network only (no respondWith: the browser fetches as if there were no worker).
  if (url.pathname.startsWith('/v1/')) return;

  // Page loads: the cached shell (the app routes with #hash, so every page is index.html).
  if (request.mode === 'navigate') {
    event.respondWith((async () => {
      const cache = await caches.open(CACHE);
      const shell = await cache.match('/index.html');
      if (shell) return shell;
      return fetch(request);
    })());
    return;
  }

  // Everything else: cache first, then the network (and keep what came back).
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(request, { ignoreSearch: true });
    if (hit) return hit;
    const response = await fetch(request);
    if (response.ok && response.type === 'basic') cache.put(request, response.clone());
    return response;
  })());
});
