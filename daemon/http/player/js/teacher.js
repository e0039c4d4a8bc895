// @ts-check
// The teacher corner: login (the box answers with the account, the HttpOnly cookie carries the
// session), first setup, teacher accounts, resumable upload and the hub's lessons.

import { getJson, send, xhr } from './api.js';
import { $, el, field, mb } from './dom.js';
import { t } from './i18n.js';
import { teacherLive, teacherOff } from './live.js';
import { showManage } from './manage.js';
import { renderMisses } from './misses.js';
import { state } from './state.js';

/** @param {Event} ev */
const formOf = (ev) => /** @type {HTMLFormElement} */ (ev.target);

/** @param {SubmitEvent} ev */
export async function login(ev) {
  ev.preventDefault();
  const form = formOf(ev);
  const status = $('login-status');
  status.textContent = '';
  const password = field(form, 'password');
  const res = await send('POST', '/api/login', { username: field(form, 'username').value.trim(), password: password.value });
  // the password leaves the page as soon as the box has answered, right or wrong
  password.value = '';
  if (res.status !== 200) {
    status.textContent = res.status === 429 ? t('login.tooMany', { why: res.body.message || '' })
      : res.status ? t('login.wrong') : t('net.short');
    return;
  }
  loggedIn(res.body);
}

/**
 * After a login, the first setup, or a reload with a live session cookie: the upload form, the
 * lesson list to manage, and for an admin the accounts form. Only the name and role are kept.
 * @param {{ username?: string, role?: string }} who
 */
export function loggedIn(who) {
  state.username = who.username ?? null;
  state.role = who.role ?? null;
  teacherLive();
  $('login').hidden = true;
  $('setup-hint').hidden = true;
  $('upload').hidden = false;
  $('logout').hidden = false;
  $('hello').textContent = t('login.hello', { name: state.username ?? '' });
  $('add-user').hidden = state.role !== 'admin';
  if (state.role === 'admin') listUsers();
  followHubSync();
  showManage();
  renderMisses(state.lesson);
}

export async function logout() {
  await send('POST', '/api/logout');
  state.username = null;
  state.role = null;
  teacherOff();
  clearInterval(state.syncTimer);
  for (const id of ['upload', 'add-user', 'hub-sync', 'manage', 'logout']) $(id).hidden = true;
  $('hello').textContent = '';
  $('login').hidden = false;
  renderMisses(state.lesson);
}

/**
 * A reload keeps the HttpOnly cookie: the box says who it belongs to in GET /api/session.
 * @returns {Promise<boolean>} whether a teacher or admin is logged in
 */
export async function resumeSession() {
  const s = await getJson('/api/session').catch(() => null);
  const who = s && (s.user || s);
  if (!who || (who.role !== 'teacher' && who.role !== 'admin')) return false;
  if (state.role !== who.role || state.username !== who.username) loggedIn(who);
  return true;
}

// ---------- lessons from the hub (issue 9): sync progress and "Pedir" ----------

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

function followHubSync() {
  clearInterval(state.syncTimer);
  showHubSync();
  // a few bytes every 5 s while the teacher page is open: the progress of a night's sync
  state.syncTimer = window.setInterval(() => { if (location.hash === '#/docente' && state.role) showHubSync(); }, 5000);
}

// ---------- first setup and accounts ----------

export async function setupNeeded() {
  const res = await send('GET', '/api/setup');
  return res.status === 200 && res.body.needed === true;
}

/** @param {SubmitEvent} ev */
export async function firstSetup(ev) {
  ev.preventDefault();
  const form = formOf(ev);
  const status = $('setup-status');
  if (field(form, 'password').value !== field(form, 'password2').value) {
    status.textContent = t('setup.mismatch');
    return;
  }
  const username = field(form, 'username').value.trim();
  const res = await send('POST', '/api/setup', { token: field(form, 'token').value.trim(), username, password: field(form, 'password').value });
  // passwords and the code leave the page whatever the answer
  field(form, 'password').value = '';
  field(form, 'password2').value = '';
  if (res.status !== 201) {
    status.textContent = !res.status ? t('net.short')
      : res.status === 401 ? t('setup.wrongCode')
        : res.status === 409 ? t('setup.done')
          : t('error', { why: res.body.message || res.status });
    return;
  }
  form.reset();
  // drop the code from the address bar and history; replaceState fires no hashchange
  history.replaceState(null, '', '#/docente');
  window.dispatchEvent(new HashChangeEvent('hashchange'));
  loggedIn({ username: res.body.username ?? username, role: res.body.role ?? 'admin' });
}

async function listUsers() {
  const res = await send('GET', '/api/users');
  if (res.status !== 200) return;
  /** @type {Array<{ username: string, role: string }>} */
  const users = res.body.users;
  $('user-list').replaceChildren(...users.map((u) => el('li', { textContent: `${u.username} (${t(u.role === 'admin' ? 'role.admin' : 'role.teacher')})` })));
}

/** @param {SubmitEvent} ev */
export async function addUser(ev) {
  ev.preventDefault();
  const form = formOf(ev);
  const status = $('add-user-status');
  const res = await send('POST', '/api/users', { username: field(form, 'username').value.trim(), password: field(form, 'password').value });
  if (res.status !== 201) {
    status.textContent = !res.status ? t('net.short')
      : res.status === 409 ? t('users.exists')
        : t('error', { why: res.body.message || res.status });
    return;
  }
  status.textContent = `✓ ${res.body.username}`;
  form.reset();
  listUsers();
}

// ---------- resumable upload ----------

/** @param {SubmitEvent} ev */
export async function upload(ev) {
  ev.preventDefault();
  const form = formOf(ev);
  const file = field(form, 'file').files?.[0];
  if (!file) return;
  const bar = /** @type {HTMLProgressElement} */ ($('upload-progress'));
  const status = $('upload-status');
  const button = /** @type {HTMLButtonElement} */ (form.querySelector('button'));
  /** @param {number} done */
  const show = (done) => {
    bar.value = file.size ? done / file.size : 1;
    status.textContent = t('upload.progress', { pct: Math.floor(bar.value * 100), done: mb(done), total: mb(file.size) });
  };
  bar.hidden = false;
  button.disabled = true;
  try {
    // create empty, then send: a dropped Wi-Fi connection resumes from what the box has (HEAD)
    const created = await xhr('POST', `/api/uploads?title=${encodeURIComponent(field(form, 'title').value.trim())}`, null, { 'upload-length': String(file.size) });
    if (created.status !== 201) throw new Error(created.json.message || `HTTP ${created.status}`);
    const url = `/api/uploads/${created.json.id}`;
    let offset = 0;
    let answer;
    for (let attempt = 0; attempt < 6; attempt++) {
      try {
        const from = offset;
        answer = await xhr('PATCH', url, file.slice(from), { 'upload-offset': String(from), 'content-type': 'application/offset+octet-stream' }, (n) => show(from + n));
        if (answer.status === 200) break;
        if (answer.status !== 409) throw new Error(answer.json.message || `HTTP ${answer.status}`);
      } catch (err) {
        if (!(err instanceof Error) || err.message !== 'connection lost') throw err;
        status.textContent = t('upload.retrying');
        await new Promise((r) => setTimeout(r, 3000));
      }
      offset = (await xhr('HEAD', url, null, {})).offset;
    }
    if (!answer || answer.status !== 200 || !answer.json.complete) throw new Error(t('upload.incomplete'));
    show(file.size);
    status.textContent = `${t('upload.done')}${answer.json.lessonId ? ` (${answer.json.lessonId})` : ''}`;
    form.reset();
    showManage();
  } catch (err) {
    status.textContent = t('error', { why: err instanceof Error ? err.message : String(err) });
  } finally {
    button.disabled = false;
  }
}
