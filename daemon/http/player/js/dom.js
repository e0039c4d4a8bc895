// @ts-check
// Small DOM and number helpers shared by the page's modules.

/**
 * The element with this id; a missing one is a bug in index.html, so it throws.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @returns {T}
 */
export function $(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`#${id} is missing from index.html`);
  return /** @type {T} */ (e);
}

/**
 * A form's input (or select) by name.
 * @param {HTMLFormElement} form
 * @param {string} name
 * @returns {HTMLInputElement}
 */
export function field(form, name) {
  const e = form.elements.namedItem(name);
  if (!(e instanceof HTMLInputElement)) throw new Error(`form #${form.id} has no input ${name}`);
  return e;
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Partial<HTMLElementTagNameMap[K]>} [props]
 * @param {...(Node | string | null | undefined)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) if (c != null) e.append(c);
  return e;
}

/** @param {number} bytes */
export function mb(bytes) {
  if (!Number.isFinite(bytes) || bytes <= 0) return '—';
  const v = bytes / 1e6;
  return `${v < 1 ? v.toFixed(2) : v.toFixed(1)} MB`;
}

/** m:ss of a duration; empty when unknown @param {number} s */
export function clock(s) {
  if (!Number.isFinite(s) || s <= 0) return '';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.round(s % 60)).padStart(2, '0')}`;
}

/** m:ss, 0:00 included (a miss can start at the first second) @param {number} s */
export function at(s) {
  const v = Math.max(0, Math.floor(s));
  return `${Math.floor(v / 60)}:${String(v % 60).padStart(2, '0')}`;
}

/** lower case without accents, as the box's search does: "célula" finds "celula" @param {string} s */
export function fold(s) {
  return s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
}
