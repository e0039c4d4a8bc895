// @ts-check
// Yachay web player, entry point: routing between the list, the player, the teacher corner
// and the first setup, and the wiring of every control. Plain ES modules, no build step;
// hls.js is the UMD bundle loaded before this file (window.Hls).

import { $ } from './dom.js';
import { syncNow } from './hub.js';
import { applyLang, savedLang } from './i18n.js';
import { setOffline, showList } from './list.js';
import { followClass, pushToClass } from './live.js';
import { showManage } from './manage.js';
import { renderMisses, reencode } from './misses.js';
import { downloadLesson, downloadedIds, offlinePossible, renderDownload, renderFiles } from './offline.js';
import { applyQuality, onAudioOnlyToggle, openLesson, renderCost, stopPlayback } from './player.js';
import { isStaff, state } from './state.js';
import { addUser, firstSetup, loggedIn, login, logout, resumeSession, setupNeeded } from './teacher.js';
import { upload } from './upload.js';

function route() {
  const h = location.hash;
  const lesson = /^#\/l\/(.+)$/.exec(h);
  const setup = /^#\/setup(?:\/(.*))?$/.exec(h);
  const teacher = h === '#/docente';
  $('list-view').hidden = Boolean(lesson) || Boolean(setup) || teacher;
  $('player-view').hidden = !lesson;
  $('teacher-view').hidden = !teacher;
  $('setup-view').hidden = !setup;
  if (setup && setup[1]) /** @type {HTMLInputElement} */ ($('setup-token')).value = decodeURIComponent(setup[1]);
  if (teacher && !state.role) {
    resumeSession().then((ok) => { if (!ok) setupNeeded().then((needed) => { $('setup-hint').hidden = !needed; }); });
  }
  if (teacher && isStaff()) showManage();
  if (lesson && lesson[1]) openLesson(decodeURIComponent(lesson[1]));
  else {
    stopPlayback();
    state.lesson = null;
    if (!teacher && !setup) showList();
  }
}

/** a new language: the static labels, then what the open view wrote itself */
async function relabel() {
  applyLang(/** @type {HTMLSelectElement} */ ($('lang')).value);
  const h = location.hash;
  if (state.lesson && /^#\/l\//.test(h)) {
    renderCost();
    renderMisses(state.lesson);
    renderFiles(state.lesson);
    await renderDownload((await downloadedIds()).has(state.lesson.id));
  } else if (h === '#/docente') {
    if (state.role) loggedIn({ username: state.username ?? '', role: state.role });
  } else if (!/^#\/setup/.test(h)) showList();
}

function init() {
  const lang = savedLang();
  /** @type {HTMLSelectElement} */ ($('lang')).value = lang;
  applyLang(lang);
  $('lang').addEventListener('change', relabel);
  $('search').addEventListener('submit', (e) => { e.preventDefault(); showList(); });
  $('q').addEventListener('input', () => {
    clearTimeout(state.searchTimer);
    state.searchTimer = window.setTimeout(showList, 250);
  });
  $('quality').addEventListener('change', (e) => { state.quality = /** @type {HTMLSelectElement} */ (e.target).value; applyQuality(); });
  $('audio-only').addEventListener('change', onAudioOnlyToggle);
  $('download').addEventListener('click', downloadLesson);
  $('login').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('setup').addEventListener('submit', firstSetup);
  $('add-user').addEventListener('submit', addUser);
  $('upload').addEventListener('submit', upload);
  $('push').addEventListener('submit', pushToClass);
  $('reencode').addEventListener('click', reencode);
  $('sync-now').addEventListener('click', syncNow);
  document.addEventListener('yachay:lessons', () => { if (isStaff() && location.hash === '#/docente') showManage(); });
  window.addEventListener('hashchange', route);
  window.addEventListener('online', () => { setOffline(false); followClass(); });
  window.addEventListener('offline', () => setOffline(true));
  if (offlinePossible()) navigator.serviceWorker.register('/sw.js').catch(() => {});
  route();
  followClass();
}

init();
