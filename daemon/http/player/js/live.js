// @ts-check
// MQTT over WebSocket: students' pages follow their class (a teacher's push opens a lesson);
// a teacher's page shows job progress and pushes lessons. The teacher's credential is a
// short-lived one from GET /api/session, fetched again for every (re)connect: the page never
// keeps the teacher's password.

import { getJson } from './api.js';
import { $, el } from './dom.js';
import { t } from './i18n.js';
import { showList } from './list.js';
import { state } from './state.js';
import { loadMqtt } from './vendor.js';

/** @typedef {import('./vendor.js').MqttClient} MqttClient */

/** MQTT refusals (3.1.1 CONNACK 4/5, 5.0 134/135): a credential expired or withdrawn */
const REFUSED = [4, 5, 134, 135];

/** @param {unknown} err */
function refused(err) {
  return Boolean(err) && REFUSED.includes(/** @type {{ code?: number }} */ (err).code ?? -1);
}

/** @type {MqttClient | null} */
let classClient = null;

export async function followClass() {
  if (classClient) return;
  let session;
  try { session = await getJson('/api/session'); } catch { return; } // offline: the 'online' event retries
  if (!session.mqttWs || !session.studentToken || classClient) return;
  let connect;
  try { connect = await loadMqtt(); } catch { return; }
  const client = connect(session.mqttWs, {
    username: 'student',
    password: session.studentToken,
    clean: true,
    clientId: `page-${Math.random().toString(36).slice(2, 12)}`,
    reconnectPeriod: 15000,
    // mqtt.js would otherwise run its keepalive timers in a blob: worker, which the page's CSP
    // (worker-src 'self') forbids; a page in the background reconnects when it comes back
    timerVariant: 'native',
  });
  classClient = client;
  client.on('connect', () => {
    client.subscribe(`yachay/${session.school}/class/+`, { qos: 0 }, (err) => { $('live').hidden = Boolean(err); });
    // a teacher deleted or renamed a lesson: the open list follows at once
    client.subscribe(`yachay/${session.school}/catalog/+`, { qos: 0 });
  });
  client.on('close', () => { $('live').hidden = true; });
  client.on('message', (topic, payload, packet) => {
    // a retained push is old news: only what the teacher sends now opens the lesson
    if (packet.retain) return;
    if (topic.includes('/catalog/')) { lessonChanged(payload.toString()); return; }
    const id = lessonIdOf(payload.toString());
    if (id && location.hash !== `#/l/${encodeURIComponent(id)}`) location.hash = `#/l/${encodeURIComponent(id)}`;
  });
  client.on('error', (err) => {
    // refused (an expired token after a long day): stop, ask the box for a new one in a minute
    if (refused(err)) {
      client.end(true);
      classClient = null;
      setTimeout(followClass, 60_000);
    }
  });
}

/**
 * `{"type":"lesson","id","change":"deleted"|"renamed"|"retry","title"?}` from the box: the list
 * is read again; a deleted lesson that is open closes.
 * @param {string} text
 */
function lessonChanged(text) {
  /** @type {{ type?: string, id?: string, change?: string, title?: string } | null} */
  let c = null;
  try { c = JSON.parse(text); } catch { return; }
  if (!c || c.type !== 'lesson' || typeof c.id !== 'string') return;
  const open = state.lesson && state.lesson.id === c.id;
  if (open && c.change === 'deleted') { location.hash = '#/'; return; }
  if (open && state.lesson && c.change === 'renamed' && typeof c.title === 'string') {
    state.lesson.title = c.title;
    $('lesson-title').textContent = c.title;
  }
  if (!$('list-view').hidden) showList();
  document.dispatchEvent(new CustomEvent('yachay:lessons'));
}

/** `{"lessonId": "…"}`, `{"id": "…"}` or just the id @param {string} text @returns {string | null} */
export function lessonIdOf(text) {
  try {
    const v = JSON.parse(text);
    if (typeof v === 'string') return v;
    return (v && (v.lessonId || v.id)) || null;
  } catch {
    return /^[a-z0-9-]{1,80}$/.test(text.trim()) ? text.trim() : null;
  }
}

// ---------- the teacher's own connection ----------

/** the teacher's MQTT client and the school it is for */
const teacher = {
  /** @type {MqttClient | null} */ client: null,
  /** @type {string | null} */ school: null,
  /** @type {number} */ retry: 0,
  /** set when the teacher logs out: no more reconnects */
  stopped: false,
};
const ROOM = /^[a-z0-9-]{1,32}$/;
const RECONNECT_MS = 5_000;

/**
 * Connects with a fresh credential from GET /api/session (the session cookie proves the
 * login). mqtt.js's own reconnect would reuse the old password, which may have expired: this
 * page reconnects itself, asking the box again each time.
 */
export async function teacherLive() {
  teacher.stopped = false;
  if (teacher.client) return;
  clearTimeout(teacher.retry);
  let session;
  let connect;
  try {
    session = await getJson('/api/session');
    if (!session.mqttWs || !session.mqtt || !session.mqtt.username) return;
    connect = await loadMqtt();
  } catch {
    again();
    return;
  }
  if (teacher.client || teacher.stopped) return;
  const client = connect(session.mqttWs, {
    username: session.mqtt.username,
    password: session.mqtt.password,
    protocolVersion: 4,
    clean: true,
    clientId: `teacher-${Math.random().toString(36).slice(2, 12)}`,
    reconnectPeriod: 0,
    timerVariant: 'native', // see followClass: no blob: worker under the page's CSP
  });
  teacher.client = client;
  teacher.school = session.school;
  client.on('connect', () => {
    client.subscribe(`yachay/${session.school}/jobs/#`, { qos: 0 }, (err) => { $('jobs').hidden = Boolean(err); });
    $('push').hidden = false;
  });
  client.on('close', () => {
    $('push').hidden = true;
    if (teacher.client !== client) return;
    client.end(true);
    teacher.client = null;
    again();
  });
  client.on('message', (_topic, payload) => {
    let e;
    try { e = JSON.parse(payload.toString()); } catch { return; }
    if (e && e.type === 'job') showJob(e);
  });
  client.on('error', (err) => {
    // refused (logged out elsewhere, account removed): the next attempt asks /api/session,
    // which then gives no credential, and the panel stays closed
    if (refused(err)) $('jobs').hidden = true;
  });
}

function again() {
  if (teacher.stopped || !state.role) return;
  clearTimeout(teacher.retry);
  teacher.retry = window.setTimeout(teacherLive, RECONNECT_MS);
}

/** after a logout: close the teacher's connection and stop reconnecting */
export function teacherOff() {
  teacher.stopped = true;
  clearTimeout(teacher.retry);
  const c = teacher.client;
  teacher.client = null;
  if (c) c.end(true);
  $('jobs').hidden = true;
  $('push').hidden = true;
}

/** @param {SubmitEvent} ev */
export function pushToClass(ev) {
  ev.preventDefault();
  const form = /** @type {HTMLFormElement} */ (ev.target);
  const room = /** @type {HTMLInputElement} */ (form.elements.namedItem('room')).value.trim();
  const status = $('push-status');
  const client = teacher.client;
  if (!client || !client.connected || !state.lesson) { status.textContent = t('net.short'); return; }
  if (!ROOM.test(room)) { status.textContent = t('push.badRoom'); return; }
  const id = state.lesson.id;
  client.publish(`yachay/${teacher.school}/class/${room}`, JSON.stringify({ lessonId: id }), { qos: 1, retain: false }, (err) => {
    status.textContent = err ? t('error', { why: err.message }) : t('push.sent', { room });
  });
}

/**
 * @typedef {object} JobEvent
 * @property {number | string} id
 * @property {string} [lessonId]
 * @property {string} [state]     queued | leased | done | dead
 * @property {number} [progress]
 * @property {string} [stage]
 * @property {string} [error]
 */

/** one row per lesson (or job, before it has a lesson): stage, progress, ready or the error @param {JobEvent} e */
function showJob(e) {
  const key = String(e.lessonId || `job-${e.id}`);
  const list = $('job-list');
  let row = /** @type {HTMLLIElement | undefined} */ ([...list.children].find((li) => /** @type {HTMLElement} */ (li).dataset.lesson === key));
  if (!row) {
    const bar = el('progress', { max: 1, value: 0 });
    bar.setAttribute('aria-label', t('jobs.progressLabel', { id: key }));
    row = el('li', {},
      el('span', { className: 'job-id', textContent: key }),
      bar,
      el('span', { className: 'job-state' }));
    row.dataset.lesson = key;
    list.prepend(row);
  }
  $('jobs-status').textContent = '';
  const bar = /** @type {HTMLProgressElement} */ (row.querySelector('progress'));
  const text = /** @type {HTMLElement} */ (row.querySelector('.job-state'));
  row.className = e.state || '';
  if (e.state === 'done') {
    bar.value = 1;
    text.textContent = t('jobs.ready');
    showList(); // the new lesson appears in the list
    document.dispatchEvent(new CustomEvent('yachay:lessons'));
  } else if (e.state === 'dead') {
    bar.hidden = true;
    text.textContent = t('error', { why: e.error || t('jobs.failed') });
    document.dispatchEvent(new CustomEvent('yachay:lessons'));
  } else {
    if (typeof e.progress === 'number') bar.value = Math.min(1, Math.max(0, e.progress));
    const pct = `${Math.floor(bar.value * 100)} %`;
    text.textContent = e.stage ? `${e.stage} · ${pct}` : `${e.state === 'queued' ? t('jobs.queued') : pct}`;
  }
}
