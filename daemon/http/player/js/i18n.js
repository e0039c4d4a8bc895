// @ts-check
// The language switch: the catalogue in strings.js applied to the page. Static labels carry
// data-i18n attributes in index.html; code asks t() for the words it writes.

import { LANGS, translate } from './strings.js';
import { state } from './state.js';

/** @typedef {import('./strings.js').Lang} Lang */
/** @typedef {import('./strings.js').Key} Key */

const LANG_KEY = 'yachay.lang';

/**
 * @param {Key} key
 * @param {Record<string, string | number>} [params]
 */
export function t(key, params) {
  return translate(state.lang, key, params);
}

/** @param {string | null | undefined} v @returns {v is Lang} */
function isLang(v) {
  return LANGS.includes(/** @type {Lang} */ (v));
}

/** The phone's saved choice, else Spanish (the school's language, whatever the browser says). */
export function savedLang() {
  let v = null;
  try { v = localStorage.getItem(LANG_KEY); } catch { /* private mode: Spanish */ }
  return isLang(v) ? v : 'es';
}

/**
 * Writes every static label in `lang` and sets <html lang>; remembered on this phone.
 * Attributes: data-i18n (text), data-i18n-placeholder, data-i18n-title, data-i18n-aria-label.
 * @param {string} lang
 */
export function applyLang(lang) {
  state.lang = isLang(lang) ? lang : 'es';
  try { localStorage.setItem(LANG_KEY, state.lang); } catch { /* this visit only */ }
  document.documentElement.lang = state.lang;
  // the teacher corner has no Quechua words (strings.js): say so to screen readers, which
  // would otherwise read its Spanish with a Quechua voice
  for (const e of document.querySelectorAll('[data-staff]')) {
    if (state.lang === 'qu') e.setAttribute('lang', 'es'); else e.removeAttribute('lang');
  }
  document.title = t('page.title');
  for (const e of document.querySelectorAll('[data-i18n]')) {
    e.textContent = t(/** @type {Key} */ (e.getAttribute('data-i18n')));
  }
  for (const attr of ['placeholder', 'title', 'aria-label']) {
    for (const e of document.querySelectorAll(`[data-i18n-${attr}]`)) {
      e.setAttribute(attr, t(/** @type {Key} */ (e.getAttribute(`data-i18n-${attr}`))));
    }
  }
}
