// @ts-check
// Lessons from the hub (issue 9) on the teacher page: the night sync's progress, and "Pedir"
// for a lesson the hub offers and the box does not have yet.

import { getJson, send } from './api.js';
import { $, el, mb } from './dom.js';
import { t } from './i18n.js';
import { state } from './state.js';

/** @type {Record<string, import('./strings.js').Key>} */
const SYNC_STATES = { idle: 'sync.idle', waiting: 'sync.waiting', syncing: 'sync.syncing', offline: 'sync.offline', unenrolled: 'sync.unenrolled' };

async function showHubSync() {
  // a server without the sync (a test rig, a box built without it) says so in its session
  // answer: the page then never asks for routes that are not there
  if (state.hubSync === undefined) {
    state.hubSync = await getJson('/api/session').then((x) => Boolean(x.hubSync), () => false);
  }
  if (!state.hubSync) { $('hub-sync').hidden = true; return; }
  const [s, c] = await Promise.all([
    getJson('/api/sync').catch(() => null),
    getJson('/api/catalog/hub').catch(() => null),
  ]);
  if (!s || !s.enrolled) { $('hub-sync').hidden = true; return; }
  $('hub-sync').hidden = false;
  /** @type {Array<{ bytes: number, done: number }>} */
  const queue = s.queue;
  const bytes = queue.reduce((n, q) => n + q.bytes, 0);
  const done = queue.reduce((n, q) => n + Math.min(q.done, q.bytes), 0);
  const next = s.nextWindowAt && s.state !== 'syncing' ? ` · ${new Date(s.nextWindowAt).toLocaleString(state.lang)}` : '';
  const key = SYNC_STATES[s.state];
  $('sync-status').textContent = `${key ? t(key) : s.state}${queue.length ? ` · ${t('hub.queued', { n: queue.length })}` : ''}${next}`;
  const bar = /** @type {HTMLProgressElement} */ ($('sync-progress'));
  bar.hidden = s.state !== 'syncing' || bytes === 0;
  bar.value = bytes ? done / bytes : 0;
  $('sync-now').hidden = state.role !== 'admin';
  /** @type {Array<{ id: string, title: string, bytes: number, onBox: boolean, requested: boolean }>} */
  const items = (c ? c.lessons : []).filter((/** @type {{ onBox: boolean }} */ l) => !l.onBox);
  $('hub-list').replaceChildren(...items.map((l) => {
    const btn = el('button', { type: 'button', textContent: t(l.requested ? 'hub.requested' : 'hub.request'), disabled: l.requested });
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      const res = await send('POST', `/api/requests/${encodeURIComponent(l.id)}`);
      btn.textContent = res.status === 202 ? t('hub.requested') : t('error', { why: res.status || t('net.short') });
    });
    return el('li', {}, `${l.title} (${mb(l.bytes)}) `, btn);
  }));
}

export async function syncNow() {
  const btn = /** @type {HTMLButtonElement} */ ($('sync-now'));
  btn.disabled = true;
  await send('POST', '/api/sync/now');
  btn.disabled = false;
  showHubSync();
}

export function followHubSync() {
  clearInterval(state.syncTimer);
  showHubSync();
  // a few bytes every 5 s while the teacher page is open: the progress of a night's sync
  state.syncTimer = window.setInterval(() => { if (location.hash === '#/docente' && state.role) showHubSync(); }, 5000);
}
