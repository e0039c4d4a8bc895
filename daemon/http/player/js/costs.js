// @ts-check
// What a lesson costs a student in bytes, before anything plays.

import { state } from './state.js';

const OPUS_OK = Boolean(window.MediaSource && MediaSource.isTypeSupported('audio/mp4; codecs="opus"'));
export const OPUS_BROKEN_KEY = 'yachay.opusRejected';

try { state.opusRejected = localStorage.getItem(OPUS_BROKEN_KEY) === '1'; } catch { /* private mode */ }

/**
 * Opus in fMP4 where MSE takes it (smallest); AAC otherwise (Safari, old Android WebViews), or
 * when this browser already refused our Opus segments (player.js onHlsError).
 */
export function audioId() {
  return OPUS_OK && !state.opusRejected ? 'a-opus' : 'a-aac';
}

/**
 * The data-saver video with its audio, the best video with its audio, and the audio alone,
 * each for the whole lesson.
 * @param {import('./state.js').Lesson} lesson
 */
export function costs(lesson) {
  const rs = lesson.renditions || [];
  // ladder order (v0 = ahorro, the rendition "Ahorro" plays), not kbps: on a short clip the
  // measured kbps of v1 can come out below v0's
  const video = rs.filter((r) => !r.id.startsWith('a-')).sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  const audio = rs.find((r) => r.id === audioId()) || rs.find((r) => r.id.startsWith('a-'));
  const a = audio ? audio.bytes : 0;
  const first = video[0];
  const last = video[video.length - 1];
  return {
    saver: first ? first.bytes + a : a,
    best: last ? last.bytes + a : a,
    audio: a,
  };
}
