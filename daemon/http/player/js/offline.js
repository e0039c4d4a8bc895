// @ts-check
// Download for offline: the lesson's data-saver rendition in Cache Storage, which sw.js serves
// without the school's Wi-Fi; and the package's single files for the phone's own player.

import { $, mb } from './dom.js';
import { t } from './i18n.js';
import { audioId } from './costs.js';
import { state } from './state.js';

export const LESSON_CACHE = 'yachay-lesson-';

export function offlinePossible() {
  return window.isSecureContext && 'caches' in window && 'serviceWorker' in navigator;
}

/** ids of the lessons saved on this phone */
export async function downloadedIds() {
  if (!('caches' in window)) return new Set();
  const names = await caches.keys();
  return new Set(names.filter((n) => n.startsWith(LESSON_CACHE)).map((n) => n.slice(LESSON_CACHE.length)));
}

/**
 * The package's single files (download/), which the phone's own player plays without network.
 * Asked for with HEAD: older packages have none, and the size is shown before anything is spent.
 * @param {import('./state.js').Lesson} lesson
 */
export async function renderFiles(lesson) {
  const box = $('files');
  box.hidden = true;
  if (!lesson.playlist) return;
  const base = new URL(lesson.playlist, location.href);
  /** @type {Array<[string, string, 'files.video' | 'files.audio', string]>} */
  const files = [
    ['file-video', 'download/leccion.mp4', 'files.video', '.mp4'],
    ['file-audio', 'download/leccion-audio.m4a', 'files.audio', '.m4a'],
  ];
  let any = false;
  for (const [id, path, label, ext] of files) {
    const link = /** @type {HTMLAnchorElement} */ ($(id));
    link.hidden = true;
    const url = new URL(path, base);
    const res = await fetch(url, { method: 'HEAD' }).catch(() => null);
    if (state.lesson !== lesson || !res || !res.ok) continue;
    link.href = url.pathname;
    link.download = `${lesson.title.replace(/[\\/:*?"<>|]+/g, ' ').replace(/\s+/g, ' ').trim() || 'leccion'}${ext}`;
    link.textContent = `${t(label)} (${mb(Number(res.headers.get('content-length') || 0))})`;
    link.hidden = false;
    any = true;
  }
  box.hidden = !any;
}

/** @param {boolean} saved */
export async function renderDownload(saved) {
  const btn = $('download');
  const status = $('download-status');
  /** @type {HTMLButtonElement} */ (btn).disabled = false;
  status.textContent = '';
  if (!offlinePossible()) {
    // browsers keep Cache Storage and service workers for https:// and localhost only: over the
    // school's plain http the single files are the way to keep a lesson
    btn.hidden = true;
    return;
  }
  btn.hidden = false;
  btn.dataset.saved = saved ? '1' : '';
  btn.textContent = t(saved ? 'download.remove' : 'download.save');
  if (saved) status.textContent = t('download.saved');
}

/** @param {string} text @param {string} base */
function playlistUris(text, base) {
  const uris = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    const map = /^#EXT-X-MAP:.*URI="([^"]+)"/.exec(l);
    if (map && map[1]) uris.push(new URL(map[1], base).href);
    else if (l && !l.startsWith('#')) uris.push(new URL(l, base).href);
  }
  return uris;
}

/**
 * Saves the master playlist, the lowest video rendition and this browser's audio rendition
 * (every playlist, init segment and media segment) plus the lesson's JSON, in one cache per
 * lesson. sw.js answers /media/ from it, so the lesson plays without the school's Wi-Fi.
 */
export async function downloadLesson() {
  const lesson = state.lesson;
  if (!lesson || !lesson.playlist) return;
  const btn = /** @type {HTMLButtonElement} */ ($('download'));
  const status = $('download-status');
  const name = LESSON_CACHE + lesson.id;
  if (btn.dataset.saved) {
    await caches.delete(name);
    await renderDownload(false);
    return;
  }
  btn.disabled = true;
  try {
    const base = new URL(lesson.playlist, location.href);
    const master = await (await fetch(base, { cache: 'no-cache' })).text();
    const lines = master.split('\n').map((l) => l.trim());
    // the data-saver rendition: v0 (what "Ahorro" plays), else the first variant (lowest first)
    const variants = lines.filter((l, i) => l && !l.startsWith('#') && (lines[i - 1] || '').startsWith('#EXT-X-STREAM-INF'));
    const saver = variants.find((u) => /^v0\//.test(u)) || variants[0];
    const playlists = [];
    if (saver) playlists.push(new URL(saver, base).href);
    const group = audioId() === 'a-opus' ? 'opus' : 'aac';
    const media = lines.find((l) => l.startsWith('#EXT-X-MEDIA') && l.includes(`GROUP-ID="${group}"`));
    const audioUri = media && /URI="([^"]+)"/.exec(media);
    if (audioUri && audioUri[1]) playlists.push(new URL(audioUri[1], base).href);
    const files = [];
    const texts = new Map([[base.href, master]]);
    for (const p of playlists) {
      const text = await (await fetch(p, { cache: 'no-cache' })).text();
      texts.set(p, text);
      files.push(...playlistUris(text, p));
    }
    const cache = await caches.open(name);
    for (const [url, text] of texts) {
      await cache.put(url, new Response(text, { headers: { 'content-type': 'application/vnd.apple.mpegurl' } }));
    }
    let bytes = 0;
    for (let i = 0; i < files.length; i++) {
      const file = /** @type {string} */ (files[i]);
      status.textContent = t('download.progress', { i: i + 1, n: files.length, mb: mb(bytes) });
      const res = await fetch(file);
      if (!res.ok) throw new Error(`${file}: HTTP ${res.status}`);
      const body = await res.arrayBuffer();
      bytes += body.byteLength;
      await cache.put(file, new Response(body, { headers: { 'content-type': res.headers.get('content-type') || 'application/octet-stream' } }));
    }
    // the lesson's JSON last: its presence marks a complete download
    await cache.put(`/api/lessons/${encodeURIComponent(lesson.id)}`, new Response(JSON.stringify(lesson), { headers: { 'content-type': 'application/json' } }));
    await renderDownload(true);
    status.textContent = t('download.done', { mb: mb(bytes) });
  } catch (err) {
    await caches.delete(name);
    await renderDownload(false);
    status.textContent = t('download.failed', { why: err instanceof Error ? err.message : String(err) });
  }
}
