// @ts-check
// The teacher corner: login and logout (the box answers with the account, the HttpOnly cookie
// carries the session), the first setup and teacher accounts.

import { getJson, send } from './api.js';
import { $, el, field } from './dom.js';
import { followHubSync } from './hub.js';
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
