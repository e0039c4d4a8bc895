// @ts-check
// Teachers and admins see where a lesson is under its quality floor, and may ask for a
// re-encode with more bits there.

import { send } from './api.js';
import { $, at, el } from './dom.js';
import { t } from './i18n.js';
import { isStaff, state } from './state.js';

/** @typedef {import('./state.js').Miss} Miss */

/** "El texto puede verse borroso en 1:20–1:45" @param {Miss} m */
export function missText(m) {
  const kind = m.kind === 'text' || m.kind === 'speech' ? m.kind : 'picture';
  return t(/** @type {'miss.text' | 'miss.speech' | 'miss.picture'} */ (`miss.${kind}`), { span: `${at(m.start)}–${at(m.end)}` });
}

/** @param {import('./state.js').Lesson | null} lesson */
export function renderMisses(lesson) {
  const misses = (lesson && lesson.misses) || [];
  const show = isStaff() && misses.length > 0;
  $('misses').hidden = !show;
  if (!show) return;
  $('miss-list').replaceChildren(...misses.map((m) => el('li', { textContent: missText(m) })));
  /** @type {HTMLButtonElement} */ ($('reencode')).disabled = false;
  $('reencode-status').textContent = '';
}

export async function reencode() {
  const lesson = state.lesson;
  if (!lesson) return;
  const status = $('reencode-status');
  const btn = /** @type {HTMLButtonElement} */ ($('reencode'));
  btn.disabled = true;
  const res = await send('POST', `/api/lessons/${encodeURIComponent(lesson.id)}/reencode`, { boost: 1 });
  if (res.status >= 200 && res.status < 300) {
    status.textContent = t('reencode.queued');
    return;
  }
  btn.disabled = false;
  status.textContent = !res.status ? t('net.short')
    : res.status === 401 || res.status === 403 ? t('auth.needed')
      : t('error', { why: res.body.message || res.status });
}
