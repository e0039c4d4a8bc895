// Yachay web player: lesson list, HLS player with data-saver choices, download for offline,
// class push over MQTT, and a small teacher corner (login + resumable upload).
// Plain ES module, no build step; hls.js is the UMD bundle loaded before this file (window.Hls).

const $ = (id) => document.getElementById(id);
const Hls = window.Hls;

const OPUS_OK = Boolean(window.MediaSource && MediaSource.isTypeSupported('audio/mp4; codecs="opus"'));
const OPUS_BROKEN_KEY = 'yachay.opusRejected';

/**
 * Opus in fMP4 where MSE takes it (smallest); AAC otherwise (Safari, old Android WebViews), or
 * when this browser already refused our Opus segments (see onHlsError).
 */
let opusRejected = false;
try { opusRejected = localStorage.getItem(OPUS_BROKEN_KEY) === '1'; } catch { /* private mode */ }
function audioId() {
  return OPUS_OK && !opusRejected ? 'a-opus' : 'a-aac';
}
const LESSON_CACHE = 'yachay-lesson-';

const state = {
  lesson: null,
  hls: null,
  audioHls: null,
  quality: 'auto',
  token: null,
  /** the logged-in account's role: teachers and admins see a lesson's misses */
  role: null,
  searchTimer: 0,
  /** the video's hls.js has begun loading (first play) */
  started: false,
  /** where the current player was asked to start (a fallback restarts there, not at 0) */
  resumeAt: 0,
};

// ---------- small helpers ----------

function mb(bytes) {
  if (!Number.isFinite(bytes) || bytes <= 0) return '—';
  const v = bytes / 1e6;
  return `${v < 1 ? v.toFixed(2) : v.toFixed(1)} MB`;
}

function clock(s) {
  if (!Number.isFinite(s) || s <= 0) return '';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.round(s % 60)).padStart(2, '0')}`;
}

/** lower case without accents, as the box's search does: "célula" finds "celula" */
function fold(s) {
  return s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) if (c != null) e.append(c);
  return e;
}

async function getJson(url) {
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

/** URL of one rendition's playlist, beside the lesson's master playlist */
function renditionUrl(lesson, id) {
  return lesson.playlist.replace(/master\.m3u8$/, `${id}/index.m3u8`);
}

/**
 * What a lesson costs before it plays: the data-saver video with its audio, the best video with
 * its audio, and the audio alone, each for the whole lesson.
 */
export function costs(lesson) {
  const rs = lesson.renditions || [];
  // ladder order (v0 = ahorro, the rendition "Ahorro" plays), not kbps: on a short clip the
  // measured kbps of v1 can come out below v0's
  const video = rs.filter((r) => !r.id.startsWith('a-')).sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  const audio = rs.find((r) => r.id === audioId()) || rs.find((r) => r.id.startsWith('a-'));
  const a = audio ? audio.bytes : 0;
  return {
    saver: video.length ? video[0].bytes + a : a,
    best: video.length ? video[video.length - 1].bytes + a : a,
    audio: a,
  };
}

// ---------- lesson list ----------

async function downloadedIds() {
  if (!('caches' in window)) return new Set();
  const names = await caches.keys();
  return new Set(names.filter((n) => n.startsWith(LESSON_CACHE)).map((n) => n.slice(LESSON_CACHE.length)));
}

/** Offline: the lessons saved on this phone, read back from their caches. */
async function offlineLessons(q) {
  const out = [];
  for (const id of await downloadedIds()) {
    const res = await caches.match(`/api/lessons/${encodeURIComponent(id)}`);
    if (res) out.push(await res.json());
  }
  const words = fold(q).split(/\s+/).filter(Boolean);
  return out.filter((l) => words.every((w) => fold(l.title).includes(w)));
}

async function showList() {
  const q = $('q').value.trim();
  const status = $('list-status');
  let lessons;
  try {
    const body = await getJson(`/api/lessons${q ? `?q=${encodeURIComponent(q)}` : ''}`);
    lessons = Array.isArray(body) ? body : body.lessons;
    setOffline(false);
  } catch {
    setOffline(true);
    lessons = await offlineLessons(q);
  }
  const saved = await downloadedIds();
  const list = $('lessons');
  list.replaceChildren(...lessons.map((l) => lessonItem(l, saved.has(l.id))));
  status.textContent = lessons.length ? ''
    : q ? 'Nada encontrado / Nothing found' : 'Aún no hay lecciones / No lessons yet';
}

function lessonItem(l, saved) {
  const c = costs(l);
  const ready = l.status === 'ready' && l.playlist;
  const meta = ready
    ? [
        el('span', { className: 'mb', textContent: mb(c.saver) }),
        ` ahorro / data saver · ${mb(c.audio)} solo audio / audio only`,
        l.durationS ? ` · ${clock(l.durationS)}` : '',
        saved ? el('span', { className: 'saved', textContent: ' · ✓ descargada / saved' }) : '',
      ]
    : [l.status === 'failed' ? 'falló / failed' : 'procesando… / processing…'];
  const body = [el('span', { className: 'title', textContent: l.title }), el('span', { className: 'meta' }, ...meta)];
  const item = ready ? el('a', { href: `#/l/${encodeURIComponent(l.id)}` }, ...body) : el('a', { className: 'pending' }, ...body);
  item.dataset.id = l.id;
  return el('li', {}, item);
}

function setOffline(off) {
  $('net').hidden = !off;
}

// ---------- player ----------

function stopPlayback() {
  for (const key of ['hls', 'audioHls']) {
    if (state[key]) { state[key].destroy(); state[key] = null; }
  }
  for (const m of [$('video'), $('audio')]) {
    m.pause();
    m.removeAttribute('src');
    m.load();
  }
}

async function openLesson(id) {
  stopPlayback();
  const status = $('player-status');
  status.textContent = '';
  $('push-status').textContent = '';
  let lesson;
  try {
    lesson = await getJson(`/api/lessons/${encodeURIComponent(id)}`);
  } catch {
    const res = 'caches' in window ? await caches.match(`/api/lessons/${encodeURIComponent(id)}`) : undefined;
    if (!res) { status.textContent = 'No se pudo abrir la lección / Could not open the lesson'; return; }
    lesson = await res.json();
  }
  state.lesson = lesson;
  $('lesson-title').textContent = lesson.title;
  const c = costs(lesson);
  $('lesson-cost').textContent = `Datos / Data: ${mb(c.saver)} ahorro / saver · ${mb(c.best)} calidad / quality · ${mb(c.audio)} solo audio / audio only`;
  const saved = (await downloadedIds()).has(lesson.id);
  // a saved lesson plays from the phone: keep to the rendition that was saved
  state.quality = saved ? 'low' : state.quality;
  $('quality').value = state.quality;
  await renderDownload(saved);
  renderFiles(lesson);
  renderMisses(lesson);
  if (!lesson.playlist) { status.textContent = 'Aún se está procesando / Still processing'; return; }
  if ($('audio-only').checked) playAudio(0, false); else playVideo(0, false);
}

function hlsSupported() {
  return Boolean(Hls && Hls.isSupported());
}

function playVideo(at, autoplay) {
  const lesson = state.lesson;
  const video = $('video');
  stopPlayback();
  state.resumeAt = at;
  $('audio-box').hidden = true;
  video.hidden = false;
  if (hlsSupported()) {
    // no worker: fMP4 needs no transmuxing, and a blob: worker would need a looser CSP;
    // autoStartLoad off: nothing is downloaded until the student presses play
    const hls = new Hls({ enableWorker: false, autoStartLoad: false, startLevel: 0, startPosition: at || -1 });
    state.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => { if (audioId() === 'a-aac') dropOpusLevels(hls); applyQuality(); });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => { video.dataset.level = String(hls.levels[d.level]?.height || ''); });
    hls.on(Hls.Events.ERROR, (_e, data) => onHlsError(hls, data));
    hls.loadSource(lesson.playlist);
    hls.attachMedia(video);
    state.started = false;
    video.addEventListener('play', () => {
      if (state.started || state.hls !== hls) return;
      state.started = true;
      hls.startLoad(at || -1);
    });
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = lesson.playlist; // Safari plays HLS itself
    if (at) video.addEventListener('loadedmetadata', () => { video.currentTime = at; }, { once: true });
  } else {
    $('player-status').textContent = 'Este navegador no puede reproducir video / This browser cannot play video';
    return;
  }
  if (autoplay) start(video);
}

function playAudio(at, autoplay) {
  const lesson = state.lesson;
  const audio = $('audio');
  stopPlayback();
  state.resumeAt = at;
  $('video').hidden = true;
  $('audio-box').hidden = false;
  if (hlsSupported()) {
    const hls = new Hls({ enableWorker: false, startPosition: at || -1 });
    state.audioHls = hls;
    hls.on(Hls.Events.ERROR, (_e, data) => onHlsError(hls, data));
    hls.loadSource(renditionUrl(lesson, audioId()));
    hls.attachMedia(audio);
  } else if (audio.canPlayType('application/vnd.apple.mpegurl')) {
    audio.src = renditionUrl(lesson, 'a-aac');
    if (at) audio.addEventListener('loadedmetadata', () => { audio.currentTime = at; }, { once: true });
  } else {
    $('player-status').textContent = 'Este navegador no puede reproducir audio / This browser cannot play audio';
    return;
  }
  if (autoplay) start(audio);
}

/** play(); when the browser refuses sound without a gesture, play muted instead */
function start(media) {
  media.play().catch(() => { media.muted = true; media.play().catch(() => {}); });
}

function onHlsError(hls, data) {
  // the browser says it plays Opus but its demuxer refused our Opus audio: remember that, and
  // play the same point again with AAC (a few more bytes, but sound)
  const audioAppend = /^buffer(Append|Appending|AddCodec)Error$/.test(data.details) && (data.sourceBufferName === 'audio' || data.parent === 'audio' || hls === state.audioHls);
  if (audioAppend && audioId() === 'a-opus') {
    opusRejected = true;
    try { localStorage.setItem(OPUS_BROKEN_KEY, '1'); } catch { /* private mode: this page only */ }
    console.warn('yachay: Opus audio refused by this browser, using AAC');
    const media = hls === state.audioHls ? $('audio') : $('video');
    const at = Math.max(media.currentTime || 0, state.resumeAt || 0);
    const playing = !media.paused || state.started;
    if (hls === state.audioHls) playAudio(at, playing); else playVideo(at, playing);
    return;
  }
  if (!data.fatal) return;
  const status = $('player-status');
  if (data.type === Hls.ErrorTypes.MEDIA_ERROR) { hls.recoverMediaError(); return; }
  status.textContent = data.type === Hls.ErrorTypes.NETWORK_ERROR
    ? 'Sin conexión con la escuela / No connection to the school box'
    : 'No se pudo reproducir / Playback failed';
}

/** keeps only the variants whose audio is AAC (the master lists each video once per audio codec) */
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
function applyQuality() {
  const hls = state.hls;
  if (!hls || !hls.levels || !hls.levels.length) return;
  let level = -1;
  if (state.quality !== 'auto') {
    // the ladder's own names: v0 = ahorro … vN = calidad; same video, two audio codecs: the
    // variant with this browser's audio first. Bitrate only when the names are not ours.
    const codec = audioId() === 'a-opus' ? 'opus' : 'mp4a';
    const ls = hls.levels.map((l, i) => {
      const m = /\/v(\d+)\/index\.m3u8/.exec(String(l.url || ''));
      return { i, n: m ? Number(m[1]) : NaN, rate: l.bitrate || 0, mine: String(l.audioCodec || '').startsWith(codec) ? 0 : 1 };
    });
    const named = ls.filter((l) => Number.isFinite(l.n));
    const low = state.quality === 'low';
    const pick = named.length
      ? named.sort((a, b) => (low ? a.n - b.n : b.n - a.n) || a.mine - b.mine)[0]
      : ls.sort((a, b) => (low ? a.rate - b.rate : b.rate - a.rate))[0];
    level = pick.i;
  }
  if (state.started) hls.currentLevel = level;
  else hls.startLevel = level;
}

function onAudioOnlyToggle() {
  if (!state.lesson || !state.lesson.playlist) return;
  const from = $('audio-only').checked ? $('video') : $('audio');
  const at = from.currentTime || 0;
  const wasPlaying = !from.paused;
  if ($('audio-only').checked) playAudio(at, wasPlaying || at > 0); else playVideo(at, wasPlaying || at > 0);
}

// ---------- download for offline (Cache Storage + sw.js) ----------

function offlinePossible() {
  return window.isSecureContext && 'caches' in window && 'serviceWorker' in navigator;
}

/**
 * The package's single files (download/), which the phone's own player plays without network.
 * Asked for with HEAD: older packages have none, and the size is shown before anything is spent.
 */
async function renderFiles(lesson) {
  const box = $('files');
  box.hidden = true;
  if (!lesson.playlist) return;
  const base = new URL(lesson.playlist, location.href);
  const files = [
    ['file-video', 'download/leccion.mp4', 'Video (ahorro) / Video (data saver)', '.mp4'],
    ['file-audio', 'download/leccion-audio.m4a', 'Solo audio / Audio only', '.m4a'],
  ];
  let any = false;
  for (const [id, path, label, ext] of files) {
    const a = $(id);
    a.hidden = true;
    const url = new URL(path, base);
    const res = await fetch(url, { method: 'HEAD' }).catch(() => null);
    if (state.lesson !== lesson || !res || !res.ok) continue;
    a.href = url.pathname;
    a.download = `${lesson.title.replace(/[\\/:*?"<>|]+/g, ' ').replace(/\s+/g, ' ').trim() || 'leccion'}${ext}`;
    a.textContent = `${label} (${mb(Number(res.headers.get('content-length') || 0))})`;
    a.hidden = false;
    any = true;
  }
  box.hidden = !any;
}

async function renderDownload(saved) {
  const btn = $('download');
  const status = $('download-status');
  btn.disabled = false;
  status.textContent = '';
  if (!offlinePossible()) {
    // browsers keep Cache Storage and service workers for https:// and localhost only: over the
    // school's plain http the single files below are the way to keep a lesson
    btn.hidden = true;
    return;
  }
  btn.hidden = false;
  btn.dataset.saved = saved ? '1' : '';
  btn.textContent = saved ? 'Borrar descarga / Remove download' : 'Descargar / Download for later';
  if (saved) status.textContent = '✓ Guardada en el teléfono / Saved on this phone';
}

function playlistUris(text, base) {
  const uris = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    const map = /^#EXT-X-MAP:.*URI="([^"]+)"/.exec(l);
    if (map) uris.push(new URL(map[1], base).href);
    else if (l && !l.startsWith('#')) uris.push(new URL(l, base).href);
  }
  return uris;
}

/**
 * Saves the master playlist, the lowest video rendition and this browser's audio rendition
 * (every playlist, init segment and media segment) plus the lesson's JSON, in one cache per
 * lesson. sw.js answers /media/ from it, so the lesson plays without the school's Wi-Fi.
 */
async function downloadLesson() {
  const lesson = state.lesson;
  const btn = $('download');
  const status = $('download-status');
  const name = LESSON_CACHE + lesson.id;
  if (btn.dataset.saved) {
    await caches.delete(name);
    await renderDownload(false);
    return;
  }
  btn.disabled = true;
  try {
    const base = new URL(lesson.playlist, location.href);
    const master = await (await fetch(base, { cache: 'no-cache' })).text();
    const lines = master.split('\n').map((l) => l.trim());
    // the data-saver rendition: v0 (what "Ahorro" plays), else the first variant (lowest first)
    const variants = lines.filter((l, i) => l && !l.startsWith('#') && (lines[i - 1] || '').startsWith('#EXT-X-STREAM-INF'));
    const saver = variants.find((u) => /^v0\//.test(u)) || variants[0];
    const playlists = [];
    if (saver) playlists.push(new URL(saver, base).href);
    const group = audioId() === 'a-opus' ? 'opus' : 'aac';
    const media = lines.find((l) => l.startsWith('#EXT-X-MEDIA') && l.includes(`GROUP-ID="${group}"`));
    const audioUri = media && /URI="([^"]+)"/.exec(media);
    if (audioUri) playlists.push(new URL(audioUri[1], base).href);
    const files = [];
    const texts = new Map([[base.href, master]]);
    for (const p of playlists) {
      const text = await (await fetch(p, { cache: 'no-cache' })).text();
      texts.set(p, text);
      files.push(...playlistUris(text, p));
    }
    const cache = await caches.open(name);
    for (const [url, text] of texts) {
      await cache.put(url, new Response(text, { headers: { 'content-type': 'application/vnd.apple.mpegurl' } }));
    }
    let bytes = 0;
    for (let i = 0; i < files.length; i++) {
      status.textContent = `Descargando / Downloading ${i + 1}/${files.length} · ${mb(bytes)}`;
      const res = await fetch(files[i]);
      if (!res.ok) throw new Error(`${files[i]}: HTTP ${res.status}`);
      const body = await res.arrayBuffer();
      bytes += body.byteLength;
      await cache.put(files[i], new Response(body, { headers: { 'content-type': res.headers.get('content-type') || 'application/octet-stream' } }));
    }
    // the lesson's JSON last: its presence marks a complete download
    await cache.put(`/api/lessons/${encodeURIComponent(lesson.id)}`, new Response(JSON.stringify(lesson), { headers: { 'content-type': 'application/json' } }));
    await renderDownload(true);
    status.textContent = `✓ Guardada: ${mb(bytes)} / Saved: ${mb(bytes)}`;
  } catch (err) {
    await caches.delete(name);
    await renderDownload(false);
    status.textContent = `No se pudo descargar / Download failed (${err.message})`;
  }
}

// ---------- class push (MQTT over WebSocket) ----------

let classClient = null;

async function followClass() {
  if (classClient) return;
  let session;
  try { session = await getJson('/api/session'); } catch { return; } // offline: the 'online' event retries
  if (!session.mqttWs || !session.studentToken || classClient) return;
  let mqtt;
  try { mqtt = (await import('/vendor/mqtt.js')).default; } catch { return; }
  const client = mqtt.connect(session.mqttWs, {
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
  });
  client.on('close', () => { $('live').hidden = true; });
  client.on('message', (_topic, payload, packet) => {
    // a retained push is old news: only what the teacher sends now opens the lesson
    if (packet.retain) return;
    const id = lessonIdOf(payload.toString());
    if (id && location.hash !== `#/l/${encodeURIComponent(id)}`) location.hash = `#/l/${encodeURIComponent(id)}`;
  });
  client.on('error', (err) => {
    // refused (an expired token after a long day): stop, ask the box for a new one in a minute
    if (err && [4, 5, 134, 135].includes(err.code)) {
      client.end(true);
      classClient = null;
      setTimeout(followClass, 60_000);
    }
  });
}

/** `{"lessonId": "…"}`, `{"id": "…"}` or just the id */
export function lessonIdOf(text) {
  try {
    const v = JSON.parse(text);
    if (typeof v === 'string') return v;
    return (v && (v.lessonId || v.id)) || null;
  } catch {
    return /^[a-z0-9-]{1,80}$/.test(text.trim()) ? text.trim() : null;
  }
}

// ---------- teacher live: job progress and push to class (MQTT, the teacher's own account) ----------

/** the teacher's MQTT client and the school it is for; the password lives only in its options */
const teacher = { client: null, school: null };
const ROOM = /^[a-z0-9-]{1,32}$/;

async function teacherLive(username, password) {
  if (teacher.client) return;
  let session;
  let mqtt;
  try {
    session = await getJson('/api/session');
    if (!session.mqttWs) return;
    mqtt = (await import('/vendor/mqtt.js')).default;
  } catch { return; }
  if (teacher.client) return;
  const client = mqtt.connect(session.mqttWs, {
    username,
    password,
    protocolVersion: 4,
    clean: true,
    clientId: `teacher-${Math.random().toString(36).slice(2, 12)}`,
    reconnectPeriod: 15000,
    timerVariant: 'native', // see followClass: no blob: worker under the page's CSP
  });
  teacher.client = client;
  teacher.school = session.school;
  client.on('connect', () => {
    client.subscribe(`yachay/${session.school}/jobs/#`, { qos: 0 }, (err) => { $('jobs').hidden = Boolean(err); });
    $('push').hidden = false;
  });
  client.on('close', () => { $('push').hidden = true; });
  client.on('message', (_topic, payload) => {
    let e;
    try { e = JSON.parse(payload.toString()); } catch { return; }
    if (e && e.type === 'job') showJob(e);
  });
  client.on('error', (err) => {
    // refused (password changed, account removed): stop, forget the credentials
    if (err && [4, 5, 134, 135].includes(err.code)) {
      client.end(true);
      if (teacher.client === client) teacher.client = null;
      $('jobs').hidden = true;
      $('push').hidden = true;
    }
  });
}

/** one row per lesson (or job, before it has a lesson): stage, progress, ready or the error */
function showJob(e) {
  const key = String(e.lessonId || `job-${e.id}`);
  const list = $('job-list');
  let row = [...list.children].find((li) => li.dataset.lesson === key);
  if (!row) {
    row = el('li', {},
      el('span', { className: 'job-id', textContent: key }),
      el('progress', { max: 1, value: 0 }),
      el('span', { className: 'job-state' }));
    row.dataset.lesson = key;
    list.prepend(row);
  }
  $('jobs-status').textContent = '';
  const bar = row.querySelector('progress');
  const text = row.querySelector('.job-state');
  row.className = e.state || '';
  if (e.state === 'done') {
    bar.value = 1;
    text.textContent = 'Lista / Ready';
    showList(); // the new lesson appears in the list
  } else if (e.state === 'dead') {
    bar.hidden = true;
    text.textContent = `Error: ${e.error || 'falló / failed'}`;
  } else {
    if (typeof e.progress === 'number') bar.value = Math.min(1, Math.max(0, e.progress));
    const pct = `${Math.floor(bar.value * 100)} %`;
    text.textContent = e.stage ? `${e.stage} · ${pct}` : `${e.state === 'queued' ? 'en cola / queued' : pct}`;
  }
}

function pushToClass(ev) {
  ev.preventDefault();
  const room = ev.target.room.value.trim();
  const status = $('push-status');
  const client = teacher.client;
  if (!client || !client.connected || !state.lesson) { status.textContent = 'Sin conexión / Offline'; return; }
  if (!ROOM.test(room)) { status.textContent = 'Aula: a-z, 0-9, - / Room: a-z, 0-9, -'; return; }
  const id = state.lesson.id;
  client.publish(`yachay/${teacher.school}/class/${room}`, JSON.stringify({ lessonId: id }), { qos: 1, retain: false }, (err) => {
    status.textContent = err ? `Error: ${err.message}` : `✓ Enviada a / Sent to ${room}`;
  });
}

// ---------- teacher: parts of a lesson under their quality floor ----------

/** m:ss, 0:00 included (a miss can start at the first second) */
function at(s) {
  const t = Math.max(0, Math.floor(s));
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
}

const MISS_TEXT = {
  text: ['El texto puede verse borroso', 'text may be blurry'],
  picture: ['La imagen puede verse borrosa', 'the picture may look blurry'],
  speech: ['La voz puede entenderse mal', 'the voice may be hard to understand'],
};

/** "El texto puede verse borroso en 1:20–1:45 / text may be blurry at 1:20–1:45" */
export function missText(m) {
  const [es, en] = MISS_TEXT[m.kind] || MISS_TEXT.picture;
  const span = `${at(m.start)}–${at(m.end)}`;
  return `${es} en ${span} / ${en} at ${span}`;
}

/** Only teachers and admins see where a lesson missed its floors, and may ask for a re-encode. */
function renderMisses(lesson) {
  const misses = (lesson && lesson.misses) || [];
  const show = Boolean(state.token) && (state.role === 'teacher' || state.role === 'admin') && misses.length > 0;
  $('misses').hidden = !show;
  if (!show) return;
  $('miss-list').replaceChildren(...misses.map((m) => el('li', { textContent: missText(m) })));
  $('reencode').disabled = false;
  $('reencode-status').textContent = '';
}

async function reencode() {
  const lesson = state.lesson;
  if (!lesson) return;
  const status = $('reencode-status');
  $('reencode').disabled = true;
  const res = await fetch(`/api/lessons/${encodeURIComponent(lesson.id)}/reencode`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${state.token}` },
    body: JSON.stringify({ boost: 1 }),
  }).catch(() => null);
  const body = res ? await res.json().catch(() => ({})) : {};
  if (res && res.ok) {
    status.textContent = 'En cola: la lección se puede ver mientras tanto / Queued: the lesson plays meanwhile';
    return;
  }
  $('reencode').disabled = false;
  status.textContent = !res ? 'Sin conexión / Offline'
    : res.status === 401 || res.status === 403 ? 'Inicie sesión como docente / Log in as a teacher'
      : `Error: ${body.message || res.status}`;
}

// ---------- teacher: login + resumable upload ----------

async function login(ev) {
  ev.preventDefault();
  const form = ev.target;
  const status = $('login-status');
  status.textContent = '';
  const res = await fetch('/api/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: form.username.value.trim(), password: form.password.value }),
  }).catch(() => null);
  const body = res ? await res.json().catch(() => ({})) : {};
  if (!res || !res.ok) {
    status.textContent = res && res.status === 429 ? `Demasiados intentos / Too many attempts: ${body.message || ''}`
      : res ? 'Usuario o contraseña incorrectos / Wrong username or password' : 'Sin conexión / Offline';
    return;
  }
  loggedIn(body, form.username.value.trim(), form.password.value);
  form.password.value = '';
}

/** After a login or the first setup: the upload form, and for an admin the accounts form. */
function loggedIn(body, username, password) {
  state.token = body.token;
  state.role = body.role;
  // the same credentials open the teacher's MQTT connection; kept in memory only
  teacherLive(username, password);
  $('login').hidden = true;
  $('setup-hint').hidden = true;
  $('upload').hidden = false;
  $('upload-status').textContent = `Hola / Hello, ${body.username}`;
  $('add-user').hidden = body.role !== 'admin';
  if (body.role === 'admin') listUsers();
  followHubSync();
  renderMisses(state.lesson);
}

// ---------- lessons from the hub (issue 9): sync progress and "Pedir / Request" ----------

const SYNC_STATES = { idle: 'Al día / Up to date', waiting: 'Esperando el horario / Waiting for the window', syncing: 'Sincronizando / Syncing', offline: 'Sin enlace al hub / Hub unreachable', unenrolled: 'Caja no inscrita / Box not enrolled' };

async function showHubSync() {
  // a server without the sync (a test rig, a box built without it) says so in its session
  // answer: the page then never asks for routes that are not there
  if (state.hubSync === undefined) {
    state.hubSync = await getJson('/api/session').then((x) => Boolean(x.hubSync), () => false);
  }
  if (!state.hubSync) { $('hub-sync').hidden = true; return; }
  const auth = { authorization: `Bearer ${state.token}` };
  const [s, c] = await Promise.all([
    fetch('/api/sync', { headers: auth }).then((r) => (r.ok ? r.json() : null)).catch(() => null),
    fetch('/api/catalog/hub', { headers: auth }).then((r) => (r.ok ? r.json() : null)).catch(() => null),
  ]);
  if (!s || !s.enrolled) { $('hub-sync').hidden = true; return; }
  $('hub-sync').hidden = false;
  const bytes = s.queue.reduce((n, q) => n + q.bytes, 0);
  const done = s.queue.reduce((n, q) => n + Math.min(q.done, q.bytes), 0);
  const next = s.nextWindowAt && s.state !== 'syncing' ? ` · ${new Date(s.nextWindowAt).toLocaleString()}` : '';
  $('sync-status').textContent = `${SYNC_STATES[s.state] || s.state}${s.queue.length ? ` · ${s.queue.length} en cola / queued` : ''}${next}`;
  $('sync-progress').hidden = s.state !== 'syncing' || bytes === 0;
  $('sync-progress').value = bytes ? done / bytes : 0;
  $('sync-now').hidden = state.role !== 'admin';
  const items = (c ? c.lessons : []).filter((l) => !l.onBox);
  $('hub-list').replaceChildren(...items.map((l) => {
    const li = document.createElement('li');
    li.textContent = `${l.title} (${mb(l.bytes)} MB) `;
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.textContent = l.requested ? 'Pedida / Requested' : 'Pedir / Request';
    btn.disabled = l.requested;
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      const res = await fetch(`/api/requests/${encodeURIComponent(l.id)}`, { method: 'POST', headers: auth }).catch(() => null);
      btn.textContent = res && res.status === 202 ? 'Pedida / Requested' : 'Error';
    });
    li.append(btn);
    return li;
  }));
}

async function syncNow() {
  $('sync-now').disabled = true;
  await fetch('/api/sync/now', { method: 'POST', headers: { authorization: `Bearer ${state.token}` } }).catch(() => null);
  $('sync-now').disabled = false;
  showHubSync();
}

function followHubSync() {
  clearInterval(state.syncTimer);
  showHubSync();
  // a few bytes every 5 s while the teacher page is open: the progress of a night's sync
  state.syncTimer = setInterval(() => { if (location.hash === '#/docente' && state.token) showHubSync(); }, 5000);
}

// ---------- first setup and accounts ----------

async function setupNeeded() {
  const res = await fetch('/api/setup').catch(() => null);
  const body = res && res.ok ? await res.json().catch(() => ({})) : {};
  return body.needed === true;
}

async function firstSetup(ev) {
  ev.preventDefault();
  const form = ev.target;
  const status = $('setup-status');
  if (form.password.value !== form.password2.value) {
    status.textContent = 'Las contraseñas no coinciden / Passwords do not match';
    return;
  }
  const username = form.username.value.trim();
  const res = await fetch('/api/setup', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: form.token.value.trim(), username, password: form.password.value }),
  }).catch(() => null);
  const body = res ? await res.json().catch(() => ({})) : {};
  if (!res || res.status !== 201) {
    status.textContent = !res ? 'Sin conexión / Offline'
      : res.status === 401 ? 'Código incorrecto / Wrong code'
      : res.status === 409 ? 'Esta caja ya tiene administrador / This box already has an admin'
      : `Error: ${body.message || res.status}`;
    return;
  }
  const password = form.password.value;
  form.reset();
  // drop the code from the address bar and history
  history.replaceState(null, '', '#/docente');
  route();
  loggedIn(body, username, password);
}

async function listUsers() {
  const res = await fetch('/api/users', { headers: { authorization: `Bearer ${state.token}` } }).catch(() => null);
  if (!res || !res.ok) return;
  const { users } = await res.json();
  const ul = $('user-list');
  ul.replaceChildren(...users.map((u) => {
    const li = document.createElement('li');
    li.textContent = `${u.username} (${u.role === 'admin' ? 'administrador / admin' : 'docente / teacher'})`;
    return li;
  }));
}

async function addUser(ev) {
  ev.preventDefault();
  const form = ev.target;
  const status = $('add-user-status');
  const res = await fetch('/api/users', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${state.token}` },
    body: JSON.stringify({ username: form.username.value.trim(), password: form.password.value }),
  }).catch(() => null);
  const body = res ? await res.json().catch(() => ({})) : {};
  if (!res || res.status !== 201) {
    status.textContent = !res ? 'Sin conexión / Offline'
      : res.status === 409 ? 'Ese usuario ya existe / That username exists'
      : `Error: ${body.message || res.status}`;
    return;
  }
  status.textContent = `✓ ${body.username}`;
  form.reset();
  listUsers();
}

/** one request with upload progress (fetch has none); resolves on any HTTP answer, rejects when the connection drops */
function xhr(method, url, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open(method, url);
    for (const [k, v] of Object.entries(headers)) x.setRequestHeader(k, v);
    if (state.token) x.setRequestHeader('authorization', `Bearer ${state.token}`);
    if (onProgress) x.upload.onprogress = (e) => onProgress(e.loaded);
    x.onload = () => {
      let json = {};
      try { json = JSON.parse(x.responseText || '{}'); } catch { /* HEAD has no body */ }
      resolve({ status: x.status, json, offset: Number(x.getResponseHeader('upload-offset') || 0) });
    };
    x.onerror = () => reject(new Error('connection lost'));
    x.send(body);
  });
}

async function upload(ev) {
  ev.preventDefault();
  const form = ev.target;
  const file = form.file.files[0];
  if (!file) return;
  const bar = $('upload-progress');
  const status = $('upload-status');
  const button = form.querySelector('button');
  const show = (done) => {
    bar.value = file.size ? done / file.size : 1;
    status.textContent = `Subiendo / Uploading ${Math.floor((bar.value) * 100)} % (${mb(done)} / ${mb(file.size)})`;
  };
  bar.hidden = false;
  button.disabled = true;
  try {
    // create empty, then send: a dropped Wi-Fi connection resumes from what the box has (HEAD)
    const created = await xhr('POST', `/api/uploads?title=${encodeURIComponent(form.title.value.trim())}`, null, { 'upload-length': String(file.size) });
    if (created.status !== 201) throw new Error(created.json.message || `HTTP ${created.status}`);
    const url = `/api/uploads/${created.json.id}`;
    let offset = 0;
    let answer;
    for (let attempt = 0; attempt < 6; attempt++) {
      try {
        answer = await xhr('PATCH', url, file.slice(offset), { 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' }, (n) => show(offset + n));
        if (answer.status === 200) break;
        if (answer.status !== 409) throw new Error(answer.json.message || `HTTP ${answer.status}`);
      } catch (err) {
        if (err.message !== 'connection lost') throw err;
        status.textContent = 'Conexión perdida, reintentando… / Connection lost, retrying…';
        await new Promise((r) => setTimeout(r, 3000));
      }
      offset = (await xhr('HEAD', url, null, {})).offset;
    }
    if (!answer || answer.status !== 200 || !answer.json.complete) throw new Error('no se completó / did not complete');
    show(file.size);
    status.textContent = `✓ Subida completa; se está optimizando / Upload complete, now being optimized${answer.json.lessonId ? ` (${answer.json.lessonId})` : ''}`;
    form.reset();
  } catch (err) {
    status.textContent = `Error: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

// ---------- routing and start ----------

function route() {
  const h = location.hash;
  const lesson = /^#\/l\/(.+)$/.exec(h);
  const setup = /^#\/setup(?:\/(.*))?$/.exec(h);
  $('list-view').hidden = Boolean(lesson) || Boolean(setup) || h === '#/docente';
  $('player-view').hidden = !lesson;
  $('teacher-view').hidden = h !== '#/docente';
  $('setup-view').hidden = !setup;
  if (setup && setup[1]) $('setup').token.value = decodeURIComponent(setup[1]);
  if (h === '#/docente' && !state.token) setupNeeded().then((needed) => { $('setup-hint').hidden = !needed; });
  if (lesson) openLesson(decodeURIComponent(lesson[1]));
  else {
    stopPlayback();
    state.lesson = null;
    if (h !== '#/docente' && !setup) showList();
  }
}

function init() {
  $('search').addEventListener('submit', (e) => { e.preventDefault(); showList(); });
  $('q').addEventListener('input', () => {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(showList, 250);
  });
  $('quality').addEventListener('change', (e) => { state.quality = e.target.value; applyQuality(); });
  $('audio-only').addEventListener('change', onAudioOnlyToggle);
  $('download').addEventListener('click', downloadLesson);
  $('login').addEventListener('submit', login);
  $('setup').addEventListener('submit', firstSetup);
  $('add-user').addEventListener('submit', addUser);
  $('upload').addEventListener('submit', upload);
  $('push').addEventListener('submit', pushToClass);
  $('reencode').addEventListener('click', reencode);
  $('sync-now').addEventListener('click', syncNow);
  window.addEventListener('hashchange', route);
  window.addEventListener('online', () => { setOffline(false); followClass(); });
  window.addEventListener('offline', () => setOffline(true));
  if (offlinePossible()) navigator.serviceWorker.register('/sw.js').catch(() => {});
  route();
  followClass();
}

init();
