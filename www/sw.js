/* Ferry Field service worker: a cache-first app shell.
 *
 * The build (webpack.config.js) replaces the two placeholders below with the list of files the
 * build emitted (HTML, JS bundle, WebAssembly, CSS, manifest, icons) and a hash of their
 * contents, so every build that changes a file installs a new cache and drops the old one.
 * The sync API (/v1/...) never touches the cache: it always goes to the network, and the
 * engine copes with a failure on its own (it keeps the outbox and retries).
 */
const PRECACHE = self.__FERRY_PRECACHE__;
const VERSION = self.__FERRY_VERSION__;
const CACHE = `ferry-field-shell-${VERSION}`;

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
