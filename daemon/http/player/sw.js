// Service worker: lets a downloaded lesson play without the school's Wi-Fi.
// /media/…: answered from a lesson cache when the file was downloaded, else from the network.
// The page itself: network first (updates arrive at once), the saved copy when offline.

const SHELL = 'yachay-shell-v1';
const SHELL_URLS = ['/', '/app.js', '/style.css', '/vendor/hls.js'];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(SHELL_URLS)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
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
