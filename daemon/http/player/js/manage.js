// @ts-check
// "Mis lecciones": a teacher or admin renames, deletes or retries a lesson, and sees why a
// job failed, the measured quality floors and what the lesson costs in data.

import { getJson, send } from './api.js';
import { costs } from './costs.js';
import { $, el, mb } from './dom.js';
import { t } from './i18n.js';
import { showList } from './list.js';
import { isStaff } from './state.js';

/** @typedef {import('./state.js').Lesson} Lesson */

/** @type {Record<string, import('./strings.js').Key>} */
const MEASURES = { ocr: 'floor.text', text: 'floor.text', ssim: 'floor.picture', picture: 'floor.picture', stoi: 'floor.speech', speech: 'floor.speech' };

/** @param {string} kind */
function floorName(kind) {
  const key = MEASURES[kind];
  return key ? t(key) : kind;
}

/**
 * Data-saver MB per minute (the box's figure when it gave one) and per lesson; null before the
 * lesson has renditions.
 * @param {Lesson} l
 */
export function dataUse(l) {
  const bytes = costs(l).saver;
  if (!bytes || !l.durationS) return null;
  const perMin = l.dataUse?.dataSaverMBPerMin ?? bytes / 1e6 / (l.durationS / 60);
  return { perMin, total: bytes };
}

/** @param {number} v */
function fixed(v) {
  return v < 1 ? v.toFixed(2) : v.toFixed(1);
}

export async function showManage() {
  const box = $('manage');
  box.hidden = !isStaff();
  if (box.hidden) return;
  /** @type {Lesson[]} */
  let lessons;
  try {
    const body = await getJson('/api/lessons');
    /** @type {Lesson[]} */
    const list = Array.isArray(body) ? body : body.lessons;
    // the list leaves out why a job failed and the floors: each lesson's own answer has them
    // (a school box holds tens of lessons, not thousands)
    lessons = await Promise.all(list.map((l) => getJson(`/api/lessons/${encodeURIComponent(l.id)}`).catch(() => l)));
  } catch {
    $('manage-status').textContent = t('net.short');
    return;
  }
  $('manage-status').textContent = lessons.length ? '' : t('manage.empty');
  const list = $('manage-list');
  /** @type {Map<string, HTMLElement>} */
  const old = new Map([...list.children].map((li) => [/** @type {HTMLElement} */ (li).dataset.id ?? '', /** @type {HTMLElement} */ (li)]));
  // the list is drawn again on every change a box reports (MQTT): a row being renamed stays as
  // it is, a row's last message stays, and the keyboard focus stays on the same action
  const active = /** @type {HTMLElement | null} */ (document.activeElement);
  const focusRow = active?.closest('#manage-list > li');
  const focusId = focusRow instanceof HTMLElement ? focusRow.dataset.id : undefined;
  const focusClass = active instanceof HTMLButtonElement ? active.className.split(' ')[0] : undefined;
  list.replaceChildren(...lessons.map((l) => {
    const before = old.get(l.id);
    if (before && before.querySelector('form')) return before;
    const li = manageItem(l);
    const said = before?.querySelector(':scope > .status')?.textContent;
    const msg = li.querySelector(':scope > .status');
    if (said && msg) msg.textContent = said;
    return li;
  }));
  if (focusId && focusClass && !list.contains(active)) {
    /** @type {HTMLElement | null} */
    const again = list.querySelector(`li[data-id="${CSS.escape(focusId)}"] button.${CSS.escape(focusClass)}`)
      ?? list.querySelector(`li[data-id="${CSS.escape(focusId)}"] button`);
    again?.focus();
  }
}

/** @param {Lesson} l */
function manageItem(l) {
  const status = /** @type {'queued' | 'processing' | 'ready' | 'failed'} */ (['queued', 'processing', 'ready', 'failed'].includes(l.status) ? l.status : 'processing');
  const info = el('ul', { className: 'facts' });
  info.append(el('li', { className: `state ${status}`, textContent: t(/** @type {import('./strings.js').Key} */ (`status.${status}`)) }));
  if (l.status === 'failed' && l.error) info.append(el('li', { className: 'reason', textContent: t('manage.reason', { why: l.error }) }));
  const use = dataUse(l);
  if (use) info.append(el('li', { className: 'data-use', textContent: t('manage.dataUse', { perMin: fixed(use.perMin), total: mb(use.total) }) }));
  if (l.status === 'ready') {
    const floors = l.floors || [];
    if (!floors.length) info.append(el('li', { className: 'floors', textContent: t('manage.noFloors') }));
    else if (floors.every((f) => f.passed === f.checks)) info.append(el('li', { className: 'floors', textContent: t('manage.floorsMet') }));
    for (const f of floors) {
      info.append(el('li', {
        className: f.passed === f.checks ? 'floors' : 'floors miss',
        textContent: t('manage.floor', { what: floorName(f.kind), min: f.min.toFixed(2), floor: f.floor.toFixed(2), passed: f.passed, checks: f.checks }),
      }));
    }
  }

  const title = el('h3', { className: 'manage-title', textContent: l.title });
  const msg = el('p', { className: 'status' });
  msg.setAttribute('role', 'status');
  const actions = el('div', { className: 'actions' });
  actions.setAttribute('role', 'group');
  actions.setAttribute('aria-label', t('manage.actionsFor', { title: l.title }));
  const rename = el('button', { type: 'button', className: 'rename', textContent: t('manage.rename') });
  const del = el('button', { type: 'button', className: 'delete danger', textContent: t('manage.delete') });
  actions.append(rename);
  if (l.status === 'failed') {
    const retry = el('button', { type: 'button', className: 'retry', textContent: t('manage.retry') });
    retry.addEventListener('click', () => retryLesson(l, retry, msg));
    actions.append(retry);
  }
  actions.append(del);

  const li = el('li', {}, title, info, actions, msg);
  li.dataset.id = l.id;
  rename.addEventListener('click', () => renameForm(l, li, title, msg, rename));
  del.addEventListener('click', () => deleteLesson(l, li, msg));
  return li;
}

/**
 * @param {Lesson} l
 * @param {HTMLLIElement} li
 * @param {HTMLElement} title
 * @param {HTMLElement} msg
 * @param {HTMLButtonElement} opener
 */
function renameForm(l, li, title, msg, opener) {
  if (li.querySelector('form')) return;
  const input = el('input', { name: 'title', value: l.title, maxLength: 200, required: true, autocomplete: 'off' });
  const label = el('label', {}, t('manage.titleLabel', { title: l.title }), input);
  const cancel = el('button', { type: 'button', className: 'secondary', textContent: t('manage.cancel') });
  const form = el('form', { className: 'rename-form' }, label, el('button', { type: 'submit', textContent: t('manage.save') }), cancel);
  const close = () => { form.remove(); opener.focus(); };
  cancel.addEventListener('click', close);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const next = input.value.trim();
    if (!next) return;
    const res = await send('PATCH', `/api/lessons/${encodeURIComponent(l.id)}`, { title: next });
    if (res.status === 200 || res.status === 204) {
      l.title = next;
      title.textContent = next;
      msg.textContent = '';
      close();
      showList();
      return;
    }
    msg.textContent = failure(res);
  });
  title.after(form);
  input.focus();
  input.select();
}

/** @param {Lesson} l @param {HTMLLIElement} li @param {HTMLElement} msg */
async function deleteLesson(l, li, msg) {
  if (!window.confirm(t('manage.confirmDelete', { title: l.title }))) return;
  const res = await send('DELETE', `/api/lessons/${encodeURIComponent(l.id)}`);
  if (res.status === 204 || res.status === 200 || res.status === 404) {
    // focus would fall to <body>: keep the keyboard user in the list
    const next = /** @type {HTMLElement | null} */ (li.nextElementSibling || li.previousElementSibling);
    li.remove();
    next?.querySelector('button')?.focus();
    if (!$('manage-list').children.length) $('manage-status').textContent = t('manage.empty');
    showList();
    return;
  }
  msg.textContent = failure(res);
}

/** @param {Lesson} l @param {HTMLButtonElement} btn @param {HTMLElement} msg */
async function retryLesson(l, btn, msg) {
  btn.disabled = true;
  const res = await send('POST', `/api/lessons/${encodeURIComponent(l.id)}/retry`);
  if (res.status === 202 || res.status === 200) {
    msg.textContent = t('manage.retried');
    const li = btn.closest('li');
    const badge = li?.querySelector('.state');
    if (badge) { badge.textContent = t('status.queued'); badge.className = 'state queued'; }
    li?.querySelector('.reason')?.remove();
    // focus moves to the row's first action, not to <body>
    li?.querySelector('button')?.focus();
    btn.remove();
    return;
  }
  btn.disabled = false;
  msg.textContent = failure(res);
}

/** @param {import('./api.js').Answer} res */
function failure(res) {
  return !res.status ? t('net.short')
    : res.status === 401 || res.status === 403 ? t('auth.needed')
      : t('error', { why: res.body.message || res.status });
}
