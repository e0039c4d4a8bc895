// @ts-check
// The students' lesson list: each lesson's data cost before anything plays; offline, the
// lessons saved on this phone.

import { getJson } from './api.js';
import { costs } from './costs.js';
import { $, clock, el, fold, mb } from './dom.js';
import { t } from './i18n.js';
import { downloadedIds } from './offline.js';

/** @typedef {import('./state.js').Lesson} Lesson */

/** @param {boolean} off */
export function setOffline(off) {
  $('net').hidden = !off;
}

/**
 * Offline: the lessons saved on this phone, read back from their caches.
 * @param {string} q
 * @returns {Promise<Lesson[]>}
 */
async function offlineLessons(q) {
  /** @type {Lesson[]} */
  const out = [];
  for (const id of await downloadedIds()) {
    const res = await caches.match(`/api/lessons/${encodeURIComponent(id)}`);
    if (res) out.push(await res.json());
  }
  const words = fold(q).split(/\s+/).filter(Boolean);
  return out.filter((l) => words.every((w) => fold(l.title).includes(w)));
}

export async function showList() {
  const q = /** @type {HTMLInputElement} */ ($('q')).value.trim();
  const status = $('list-status');
  /** @type {Lesson[]} */
  let lessons;
  try {
    const body = await getJson(`/api/lessons${q ? `?q=${encodeURIComponent(q)}` : ''}`);
    lessons = Array.isArray(body) ? body : body.lessons;
    setOffline(false);
  } catch {
    setOffline(true);
    lessons = await offlineLessons(q);
  }
  const saved = await downloadedIds();
  $('lessons').replaceChildren(...lessons.map((l) => lessonItem(l, saved.has(l.id))));
  status.textContent = lessons.length ? '' : t(q ? 'list.none' : 'list.empty');
}

/** @param {Lesson} l @param {boolean} saved */
function lessonItem(l, saved) {
  const c = costs(l);
  const ready = l.status === 'ready' && l.playlist;
  const meta = ready
    ? [
        el('span', { className: 'mb', textContent: mb(c.saver) }),
        // the first figure is styled apart, so the sentence is cut after it
        t('list.meta', { saver: '', audio: mb(c.audio) }),
        l.durationS ? ` · ${clock(l.durationS)}` : '',
        saved ? el('span', { className: 'saved', textContent: ` · ${t('list.saved')}` }) : '',
      ]
    : [t(l.status === 'failed' ? 'list.failed' : 'list.processing')];
  const body = [el('span', { className: 'title', textContent: l.title }), el('span', { className: 'meta' }, ...meta)];
  // a lesson still being made is text, not a link: nothing to open yet
  const item = ready ? el('a', { href: `#/l/${encodeURIComponent(l.id)}` }, ...body) : el('div', { className: 'pending' }, ...body);
  item.dataset.id = l.id;
  return el('li', {}, item);
}
