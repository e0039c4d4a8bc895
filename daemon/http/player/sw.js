// @ts-check
// Service worker: lets a downloaded lesson play without the school's Wi-Fi.
// /media/…: answered from a lesson cache when the file was downloaded, else from the network.
// The page itself: network first (updates arrive at once), the saved copy when offline.

// v2: the page became ES modules under /js/ (test/unit/http/player-page.test.ts checks this
// list against what the box serves: a module missing here would break the page offline)
const SHELL = 'yachay-shell-v2';
const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));
const SHELL_URLS = [
  '/', '/style.css', '/vendor/hls.js',
  '/js/api.js', '/js/costs.js', '/js/dom.js', '/js/hub.js', '/js/i18n.js', '/js/list.js', '/js/live.js',
  '/js/main.js', '/js/manage.js', '/js/misses.js', '/js/offline.js', '/js/player.js', '/js/state.js',
  '/js/strings.js', '/js/teacher.js', '/js/upload.js', '/js/vendor.js',
];

sw.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(SHELL_URLS)).then(() => sw.skipWaiting()));
});

sw.addEventListener('activate', (event) => {
  // the old shell (v1: one app.js) would otherwise stay on the phone for good
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n.startsWith('yachay-shell-') && n !== SHELL).map((n) => caches.delete(n))))
    .then(() => sw.clients.claim()));
});

sw.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== sw.location.origin) return;
  if (url.pathname.startsWith('/media/')) {
    event.respondWith(caches.match(req, { ignoreVary: true }).then((hit) => hit || fetch(req)));
    return;
  }
  if (SHELL_URLS.includes(url.pathname)) {
    event.respondWith(fetch(req).then((res) => {
      if (res.ok) {
        const copy = res.clone();
        caches.open(SHELL).then((c) => c.put(url.pathname, copy));
      }
      return res;
    }).catch(() => caches.match(url.pathname, { cacheName: SHELL }).then((hit) => hit || Response.error())));
  }
  // everything else (the API) goes to the network; the page falls back to its lesson caches
});
