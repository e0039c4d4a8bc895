// @ts-check
// Talking to the box. Same-origin requests carry the HttpOnly session cookie by themselves:
// the page never sees, keeps or sends the session token.

/** @param {string} url */
export async function getJson(url) {
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

/**
 * @typedef {object} Answer
 * @property {number} status   0 when the box could not be reached
 * @property {any} body        the JSON answer, {} when there is none
 */

/**
 * One JSON request; never throws (status 0: no connection).
 * @param {string} method
 * @param {string} url
 * @param {unknown} [body]
 * @returns {Promise<Answer>}
 */
export async function send(method, url, body) {
  /** @type {RequestInit} */
  const init = { method, headers: { accept: 'application/json' } };
  if (body !== undefined) {
    init.headers = { accept: 'application/json', 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  const res = await fetch(url, init).catch(() => null);
  if (!res) return { status: 0, body: {} };
  const json = await res.json().catch(() => ({}));
  return { status: res.status, body: json ?? {} };
}

/**
 * @typedef {object} XhrAnswer
 * @property {number} status
 * @property {any} json
 * @property {number} offset   the Upload-Offset header
 */

/**
 * One request with upload progress (fetch has none); resolves on any HTTP answer, rejects when
 * the connection drops.
 * @param {string} method
 * @param {string} url
 * @param {XMLHttpRequestBodyInit | null} body
 * @param {Record<string, string>} headers
 * @param {(loaded: number) => void} [onProgress]
 * @returns {Promise<XhrAnswer>}
 */
export function xhr(method, url, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open(method, url);
    for (const [k, v] of Object.entries(headers)) x.setRequestHeader(k, v);
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
