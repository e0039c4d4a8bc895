// @ts-check
// Learning from what people say (issue 13 item 3). Students who watched a lesson in data-saver
// mode are asked once, optionally, whether they could read the text and understand the voice;
// teachers flag a span as unreadable or inaudible. The box re-encodes the shots they name with
// more bits. Nothing about the student is sent: the lesson, the shots, the rendition, the answer.

import { getJson, send } from './api.js';
import { $ } from './dom.js';
import { t } from './i18n.js';
import { isStaff, state } from './state.js';

const ASKED_KEY = 'yachay.feedback.asked';
/** a phone keeps the last lessons it asked about, not every lesson it ever played */
const ASKED_MAX = 300;
/** the student must have watched this share of the lesson (or to its end) to be asked */
const WATCHED_SHARE = 0.5;
/** a shot watched for less than this was skimmed, not seen */
const SHOT_SECONDS = 1;
/** the teacher's "marcar este tramo": this many seconds either side of the playhead */
const FLAG_AROUND = 3;

/**
 * @typedef {object} Watch
 * @property {string} lesson
 * @property {{ index: number, start: number, end: number }[] | null} shots   fetched when asked
 * @property {number} seen          seconds played
 * @property {number} low           of which at the data-saver rendition
 * @property {Map<number, number>} perSecond   seconds watched at the data-saver rendition, by second of the lesson
 * @property {string} rendition     the data-saver rendition's id
 * @property {number} last          the playhead at the last tick
 */

/** @type {Watch | null} */
let watch = null;

const video = () => /** @type {HTMLVideoElement} */ ($('video'));

/** @returns {string[]} */
function askedList() {
  try {
    const v = JSON.parse(localStorage.getItem(ASKED_KEY) || '[]');
    return Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
  } catch { return []; }
}

/** @param {string} id */
function markAsked(id) {
  const list = askedList().filter((x) => x !== id);
  list.push(id);
  try { localStorage.setItem(ASKED_KEY, JSON.stringify(list.slice(-ASKED_MAX))); } catch { /* private mode: asked again next visit */ }
}

/** the rendition playing now, as the ladder names it (v0 = ahorro) and whether it is the lowest */
function playing() {
  const hls = state.hls;
  if (!hls || !hls.levels) return null;
  // the level on screen; before the first switch is reported, the one being loaded
  const at = hls.currentLevel >= 0 ? hls.currentLevel : hls.loadLevel;
  if (at < 0) return null;
  const level = hls.levels[at];
  const m = /\/(v\d+)\/index\.m3u8/.exec(String(level && level.url || ''));
  const id = m && m[1] ? m[1] : `level${at}`;
  const lowest = Math.min(...hls.levels.map((l) => l.bitrate || Infinity));
  return { id, low: id === 'v0' || (level !== undefined && (level.bitrate || 0) <= lowest) };
}

/** the phone's own data-saver setting (Chrome on Android: "Ahorro de datos") */
function phoneSavesData() {
  const c = /** @type {{ connection?: { saveData?: boolean } }} */ (/** @type {unknown} */ (navigator)).connection;
  return Boolean(c && c.saveData);
}

function onTick() {
  const v = video();
  const lesson = state.lesson;
  if (!lesson || v.paused) return;
  if (!watch || watch.lesson !== lesson.id) {
    // the shots are asked for only when the student answers: most watchers are never asked
    watch = { lesson: lesson.id, shots: null, seen: 0, low: 0, perSecond: new Map(), rendition: 'v0', last: v.currentTime };
    return;
  }
  const now = v.currentTime;
  const dt = now - watch.last;
  watch.last = now;
  // a seek is not watching
  if (dt <= 0 || dt > 2) return;
  watch.seen += dt;
  const p = playing();
  if (!(p && p.low) && !phoneSavesData()) return;
  if (p && p.low) watch.rendition = p.id;
  watch.low += dt;
  const sec = Math.floor(now);
  watch.perSecond.set(sec, (watch.perSecond.get(sec) || 0) + dt);
}

/** after the end, or a pause past half the lesson: ask, when it was watched in data-saver mode */
function maybeAsk() {
  const lesson = state.lesson;
  const v = video();
  if (!lesson || !watch || watch.lesson !== lesson.id || isStaff()) return;
  const duration = lesson.durationS || v.duration || 0;
  const enough = v.ended || (duration > 0 && watch.seen >= duration * WATCHED_SHARE);
  if (!enough || watch.low < watch.seen / 2 || askedList().includes(lesson.id)) return;
  markAsked(lesson.id);
  const box = $('feedback');
  for (const p of box.querySelectorAll('p[data-kind]')) {
    /** @type {HTMLElement} */ (p).hidden = false;
    for (const b of p.querySelectorAll('button')) /** @type {HTMLButtonElement} */ (b).disabled = false;
  }
  $('feedback-status').textContent = '';
  box.hidden = false;
}

/** the shots the answer is about: those watched at the data-saver rendition, else the one under the playhead */
/** @param {Watch} w */
function shotsWatched(w) {
  if (!w.shots) return [];
  const seen = w.shots.filter((s) => {
    let sum = 0;
    for (const [sec, dt] of w.perSecond) if (sec + 0.5 >= s.start && sec + 0.5 < s.end) sum += dt;
    return sum >= SHOT_SECONDS;
  }).map((s) => s.index);
  if (seen.length) return seen.slice(0, 64);
  const now = video().currentTime;
  const s = w.shots.find((x) => now >= x.start && now < x.end) || w.shots[w.shots.length - 1];
  return s ? [s.index] : [];
}

/** @param {Event} e */
async function onAnswer(e) {
  const b = /** @type {HTMLElement} */ (e.target).closest('button[data-answer]');
  const row = b && b.closest('p[data-kind]');
  const w = watch;
  if (!b || !row || !state.lesson || !w) return;
  for (const x of row.querySelectorAll('button')) /** @type {HTMLButtonElement} */ (x).disabled = true;
  w.shots ??= await getJson(`/api/lessons/${encodeURIComponent(w.lesson)}/shots`).then((r) => r.shots).catch(() => null);
  const res = await send('POST', '/api/feedback', {
    lesson: w.lesson, rendition: w.rendition, shots: shotsWatched(w),
    kind: row.getAttribute('data-kind'), answer: b.getAttribute('data-answer'),
  });
  /** @type {HTMLElement} */ (row).hidden = true;
  $('feedback-status').textContent = res.status >= 200 && res.status < 300 ? t('feedback.thanks') : '';
  const left = [...$('feedback').querySelectorAll('p[data-kind]')].some((p) => !(/** @type {HTMLElement} */ (p).hidden));
  if (!left) $('feedback-close').hidden = true;
}

function onPlaying() {
  $('flag').hidden = !isStaff() || !state.lesson;
}

function flagHere() {
  const now = video().currentTime || 0;
  const dur = (state.lesson && state.lesson.durationS) || video().duration || now + FLAG_AROUND;
  /** @type {HTMLInputElement} */ ($('flag-start')).value = String(Math.max(0, Math.floor(now - FLAG_AROUND)));
  /** @type {HTMLInputElement} */ ($('flag-end')).value = String(Math.min(Math.ceil(dur), Math.ceil(now + FLAG_AROUND)));
}

/** @param {SubmitEvent} e */
async function sendFlag(e) {
  e.preventDefault();
  const lesson = state.lesson;
  if (!lesson) return;
  const status = $('flag-status');
  const p = playing();
  const res = await send('POST', `/api/lessons/${encodeURIComponent(lesson.id)}/flags`, {
    start: Number(/** @type {HTMLInputElement} */ ($('flag-start')).value),
    end: Number(/** @type {HTMLInputElement} */ ($('flag-end')).value),
    kind: /** @type {HTMLSelectElement} */ ($('flag-kind')).value,
    ...(p && /^v\d+$/.test(p.id) ? { rendition: p.id } : {}),
  });
  status.textContent = res.status === 202 ? t(res.body.reencode ? 'flag.queued' : 'flag.kept')
    : !res.status ? t('net.short')
      : res.status === 401 || res.status === 403 ? t('auth.needed')
        : t('error', { why: res.body.message || res.status });
}

/** a new view: nothing asked or flagged yet there */
function reset() {
  $('feedback').hidden = true;
  $('feedback-close').hidden = false;
  $('flag').hidden = true;
  $('flag-status').textContent = '';
}

export function initFeedback() {
  const v = video();
  v.addEventListener('timeupdate', onTick);
  v.addEventListener('ended', maybeAsk);
  v.addEventListener('pause', maybeAsk);
  v.addEventListener('playing', onPlaying);
  $('feedback').addEventListener('click', onAnswer);
  $('feedback-close').addEventListener('click', () => { $('feedback').hidden = true; });
  $('flag-here').addEventListener('click', flagHere);
  $('flag').addEventListener('submit', sendFlag);
  window.addEventListener('hashchange', reset);
}
