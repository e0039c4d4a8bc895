// @ts-check
// The HLS player: video with data-saver choices, or audio only; Opus where the browser takes
// it, AAC otherwise. hls.js downloads nothing until the student presses play.

import { getJson } from './api.js';
import { OPUS_BROKEN_KEY, audioId, costs } from './costs.js';
import { $, mb } from './dom.js';
import { t } from './i18n.js';
import { renderMisses } from './misses.js';
import { downloadedIds, renderDownload, renderFiles } from './offline.js';
import { state } from './state.js';
import { Hls } from './vendor.js';

/** @typedef {import('./vendor.js').HlsPlayer} HlsPlayer */

const video = () => /** @type {HTMLVideoElement} */ ($('video'));
const audio = () => /** @type {HTMLAudioElement} */ ($('audio'));
const audioOnly = () => /** @type {HTMLInputElement} */ ($('audio-only'));

/** URL of one rendition's playlist, beside the lesson's master playlist @param {string} playlist @param {string} id */
function renditionUrl(playlist, id) {
  return playlist.replace(/master\.m3u8$/, `${id}/index.m3u8`);
}

export function stopPlayback() {
  for (const key of /** @type {const} */ (['hls', 'audioHls'])) {
    const h = state[key];
    if (h) { h.destroy(); state[key] = null; }
  }
  for (const m of [video(), audio()]) {
    m.pause();
    m.removeAttribute('src');
    m.load();
  }
}

/** @param {string} id */
export async function openLesson(id) {
  stopPlayback();
  const status = $('player-status');
  status.textContent = '';
  $('push-status').textContent = '';
  /** @type {import('./state.js').Lesson} */
  let lesson;
  try {
    lesson = await getJson(`/api/lessons/${encodeURIComponent(id)}`);
  } catch {
    const res = 'caches' in window ? await caches.match(`/api/lessons/${encodeURIComponent(id)}`) : undefined;
    if (!res) { status.textContent = t('player.cannotOpen'); return; }
    lesson = await res.json();
  }
  state.lesson = lesson;
  $('lesson-title').textContent = lesson.title;
  renderCost();
  const saved = (await downloadedIds()).has(lesson.id);
  // a saved lesson plays from the phone: keep to the rendition that was saved
  state.quality = saved ? 'low' : state.quality;
  /** @type {HTMLSelectElement} */ ($('quality')).value = state.quality;
  await renderDownload(saved);
  renderFiles(lesson);
  renderMisses(lesson);
  if (!lesson.playlist) { status.textContent = t('player.processing'); return; }
  if (audioOnly().checked) playAudio(0, false); else playVideo(0, false);
}

/** the cost line, in the page's language (again after a language switch) */
export function renderCost() {
  if (!state.lesson) return;
  const c = costs(state.lesson);
  $('lesson-cost').textContent = t('player.cost', { saver: mb(c.saver), best: mb(c.best), audio: mb(c.audio) });
}

/** @returns {boolean} */
function hlsSupported() {
  return Boolean(Hls && Hls.isSupported());
}

/** @param {number} from @param {boolean} autoplay */
function playVideo(from, autoplay) {
  const lesson = state.lesson;
  if (!lesson || !lesson.playlist) return;
  const v = video();
  stopPlayback();
  state.resumeAt = from;
  $('audio-box').hidden = true;
  v.hidden = false;
  if (Hls && hlsSupported()) {
    // no worker: fMP4 needs no transmuxing, and a blob: worker would need a looser CSP;
    // autoStartLoad off: nothing is downloaded until the student presses play
    const hls = new Hls({ enableWorker: false, autoStartLoad: false, startLevel: 0, startPosition: from || -1 });
    state.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => { if (audioId() === 'a-aac') dropOpusLevels(hls); applyQuality(); });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => { v.dataset.level = String(hls.levels[d.level]?.height || ''); });
    hls.on(Hls.Events.ERROR, (_e, data) => onHlsError(hls, data));
    hls.loadSource(lesson.playlist);
    hls.attachMedia(v);
    state.started = false;
    v.addEventListener('play', () => {
      if (state.started || state.hls !== hls) return;
      state.started = true;
      hls.startLoad(from || -1);
      // "Ahorro" or "Calidad" chosen before play set only the start level: pin it now, or ABR climbs
      applyQuality();
    });
  } else if (v.canPlayType('application/vnd.apple.mpegurl')) {
    v.src = lesson.playlist; // Safari plays HLS itself
    if (from) v.addEventListener('loadedmetadata', () => { v.currentTime = from; }, { once: true });
  } else {
    $('player-status').textContent = t('player.noVideo');
    return;
  }
  if (autoplay) start(v);
}

/** @param {number} from @param {boolean} autoplay */
function playAudio(from, autoplay) {
  const lesson = state.lesson;
  if (!lesson || !lesson.playlist) return;
  const a = audio();
  stopPlayback();
  state.resumeAt = from;
  video().hidden = true;
  $('audio-box').hidden = false;
  if (Hls && hlsSupported()) {
    const hls = new Hls({ enableWorker: false, startPosition: from || -1 });
    state.audioHls = hls;
    hls.on(Hls.Events.ERROR, (_e, data) => onHlsError(hls, data));
    hls.loadSource(renditionUrl(lesson.playlist, audioId()));
    hls.attachMedia(a);
  } else if (a.canPlayType('application/vnd.apple.mpegurl')) {
    a.src = renditionUrl(lesson.playlist, 'a-aac');
    if (from) a.addEventListener('loadedmetadata', () => { a.currentTime = from; }, { once: true });
  } else {
    $('player-status').textContent = t('player.noAudio');
    return;
  }
  if (autoplay) start(a);
}

/** play(); when the browser refuses sound without a gesture, play muted instead @param {HTMLMediaElement} media */
function start(media) {
  media.play().catch(() => { media.muted = true; media.play().catch(() => {}); });
}

/**
 * @param {HlsPlayer} hls
 * @param {import('hls.js/dist/hls.js').ErrorData} data
 */
function onHlsError(hls, data) {
  if (!Hls) return;
  // the browser says it plays Opus but its demuxer refused our Opus audio: remember that, and
  // play the same point again with AAC (a few more bytes, but sound)
  const d = /** @type {{ sourceBufferName?: string }} */ (/** @type {unknown} */ (data));
  const audioAppend = /^buffer(Append|Appending|AddCodec)Error$/.test(data.details) && (d.sourceBufferName === 'audio' || data.parent === 'audio' || hls === state.audioHls);
  if (audioAppend && audioId() === 'a-opus') {
    state.opusRejected = true;
    try { localStorage.setItem(OPUS_BROKEN_KEY, '1'); } catch { /* private mode: this page only */ }
    console.warn('yachay: Opus audio refused by this browser, using AAC');
    const media = hls === state.audioHls ? audio() : video();
    const from = Math.max(media.currentTime || 0, state.resumeAt || 0);
    const playing = !media.paused || state.started;
    if (hls === state.audioHls) playAudio(from, playing); else playVideo(from, playing);
    return;
  }
  if (!data.fatal) return;
  if (data.type === Hls.ErrorTypes.MEDIA_ERROR) { hls.recoverMediaError(); return; }
  $('player-status').textContent = t(data.type === Hls.ErrorTypes.NETWORK_ERROR ? 'player.noBox' : 'player.failed');
}

/** keeps only the variants whose audio is AAC (the master lists each video once per audio codec) @param {HlsPlayer} hls */
function dropOpusLevels(hls) {
  const opus = hls.levels.map((l, i) => (/opus/i.test(String(l.audioCodec || l.attrs?.CODECS || '')) ? i : -1)).filter((i) => i >= 0);
  if (opus.length === hls.levels.length) return;
  for (const i of opus.reverse()) hls.removeLevel(i);
}

/**
 * Automática → ABR; Ahorro → the data-saver level (v0, first in the ladder); Calidad → the
 * largest picture. Before play only the start level is set (setting currentLevel would start
 * downloading); while playing, hls.currentLevel switches at once.
 */
export function applyQuality() {
  const hls = state.hls;
  if (!hls || !hls.levels || !hls.levels.length) return;
  let level = -1;
  if (state.quality !== 'auto') {
    // the ladder's own names: v0 = ahorro … vN = calidad; same video, two audio codecs: the
    // variant with this browser's audio first. Bitrate only when the names are not ours.
    const codec = audioId() === 'a-opus' ? 'opus' : 'mp4a';
    // v0a: the same picture as v0 in AV1, fewer bytes; only where this browser decodes it
    const ls = hls.levels.map((l, i) => {
      const m = /\/v(\d+)(a?)\/index\.m3u8/.exec(String(l.url || ''));
      const ok = !m || !m[2] || decodes(String(l.videoCodec || 'av01.0.08M.08'));
      return { i, n: m && ok ? Number(m[1]) : NaN, rate: l.bitrate || 0, mine: String(l.audioCodec || '').startsWith(codec) ? 0 : 1 };
    });
    const named = ls.filter((l) => Number.isFinite(l.n));
    const low = state.quality === 'low';
    // same rung: this browser's audio first, then the fewer bytes (AV1 where it plays)
    const pick = named.length
      ? named.sort((a, b) => (low ? a.n - b.n : b.n - a.n) || a.mine - b.mine || a.rate - b.rate)[0]
      : ls.sort((a, b) => (low ? a.rate - b.rate : b.rate - a.rate))[0];
    if (pick) level = pick.i;
  }
  if (state.started) hls.currentLevel = level;
  else hls.startLevel = level;
}

/** @param {string} codec */
function decodes(codec) {
  const MS = /** @type {any} */ (window).MediaSource;
  return Boolean(MS && MS.isTypeSupported && MS.isTypeSupported(`video/mp4; codecs="${codec}"`));
}

export function onAudioOnlyToggle() {
  if (!state.lesson || !state.lesson.playlist) return;
  const on = audioOnly().checked;
  const from = on ? video() : audio();
  const pos = from.currentTime || 0;
  const wasPlaying = !from.paused;
  if (on) playAudio(pos, wasPlaying || pos > 0); else playVideo(pos, wasPlaying || pos > 0);
}
