// @ts-check
// The page's one mutable state. Every module reads and writes it here, by name, so what the
// page remembers between events is in one place (and a test can read it all as JSON: it must
// never hold the session token or a password; the cookie carries the session).

/**
 * @typedef {object} Rendition
 * @property {string} id        v0…vN video, a-opus / a-aac audio
 * @property {number} bytes
 * @property {number} [kbps]
 * @property {number} [bytesPerMinute]
 */

/**
 * @typedef {object} Miss
 * @property {string} kind      text | picture | speech
 * @property {number} start
 * @property {number} end
 * @property {number} [value]
 * @property {number} [floor]
 */

/**
 * A lesson as GET /api/lessons(/:id) gives it.
 * @typedef {object} Lesson
 * @property {string} id
 * @property {string} title
 * @property {string} status    queued | processing | ready | failed
 * @property {string | null} [playlist]
 * @property {number | null} [durationS]
 * @property {Rendition[]} [renditions]
 * @property {Miss[]} [misses]
 * @property {string | null} [error]     why its job failed (detail view)
 * @property {Floor[]} [floors]           per measure, what the optimizer's checks found (detail view)
 * @property {{ dataSaverMBPerMin?: number | null }} [dataUse]   (detail view)
 */

/**
 * One quality measure of a ready lesson, over all its checks (GET /api/lessons/:id).
 * @typedef {object} Floor
 * @property {string} kind      ocr (text) | ssim (picture) | stoi (speech)
 * @property {number} checks
 * @property {number} passed
 * @property {number} min       the lowest value measured
 * @property {number} floor
 */

/**
 * @typedef {object} PageState
 * @property {import('./strings.js').Lang} lang
 * @property {Lesson | null} lesson          the lesson open in the player
 * @property {import('./vendor.js').HlsPlayer | null} hls        the video's player
 * @property {import('./vendor.js').HlsPlayer | null} audioHls   the audio-only player
 * @property {string} quality               auto | low | high
 * @property {string | null} username        the logged-in account (the cookie holds the session)
 * @property {string | null} role            its role: teachers and admins see a lesson's misses
 * @property {number} searchTimer
 * @property {number} syncTimer
 * @property {boolean} started               the video's hls.js has begun loading (first play)
 * @property {number} resumeAt               where a fallback restarts (not at 0)
 * @property {boolean} opusRejected          this browser refused our Opus audio once
 * @property {boolean | undefined} hubSync   the server has the hub sync routes
 */

/** @type {PageState} */
export const state = {
  lang: 'es',
  lesson: null,
  hls: null,
  audioHls: null,
  quality: 'auto',
  username: null,
  role: null,
  searchTimer: 0,
  syncTimer: 0,
  started: false,
  resumeAt: 0,
  opusRejected: false,
  hubSync: undefined,
};

/** a teacher or admin is logged in on this page */
export function isStaff() {
  return state.role === 'teacher' || state.role === 'admin';
}
