// @ts-check
// The teacher's resumable upload: create, then send; a dropped Wi-Fi connection resumes from
// what the box already has (HEAD), with progress (XMLHttpRequest: fetch has none).

import { xhr } from './api.js';
import { $, field, mb } from './dom.js';
import { t } from './i18n.js';
import { showManage } from './manage.js';

/** @param {SubmitEvent} ev */
export async function upload(ev) {
  ev.preventDefault();
  const form = /** @type {HTMLFormElement} */ (ev.target);
  const file = field(form, 'file').files?.[0];
  if (!file) return;
  const bar = /** @type {HTMLProgressElement} */ ($('upload-progress'));
  const status = $('upload-status');
  const button = /** @type {HTMLButtonElement} */ (form.querySelector('button'));
  /** @param {number} done */
  const show = (done) => {
    bar.value = file.size ? done / file.size : 1;
    status.textContent = t('upload.progress', { pct: Math.floor(bar.value * 100), done: mb(done), total: mb(file.size) });
  };
  bar.hidden = false;
  button.disabled = true;
  try {
    // create empty, then send: a dropped Wi-Fi connection resumes from what the box has (HEAD)
    const created = await xhr('POST', `/api/uploads?title=${encodeURIComponent(field(form, 'title').value.trim())}`, null, { 'upload-length': String(file.size) });
    if (created.status !== 201) throw new Error(created.json.message || `HTTP ${created.status}`);
    const url = `/api/uploads/${created.json.id}`;
    let offset = 0;
    let answer;
    for (let attempt = 0; attempt < 6; attempt++) {
      try {
        const from = offset;
        answer = await xhr('PATCH', url, file.slice(from), { 'upload-offset': String(from), 'content-type': 'application/offset+octet-stream' }, (n) => show(from + n));
        if (answer.status === 200) break;
        if (answer.status !== 409) throw new Error(answer.json.message || `HTTP ${answer.status}`);
      } catch (err) {
        if (!(err instanceof Error) || err.message !== 'connection lost') throw err;
        status.textContent = t('upload.retrying');
        await new Promise((r) => setTimeout(r, 3000));
      }
      offset = (await xhr('HEAD', url, null, {})).offset;
    }
    if (!answer || answer.status !== 200 || !answer.json.complete) throw new Error(t('upload.incomplete'));
    show(file.size);
    status.textContent = `${t('upload.done')}${answer.json.lessonId ? ` (${answer.json.lessonId})` : ''}`;
    form.reset();
    showManage();
  } catch (err) {
    status.textContent = t('error', { why: err instanceof Error ? err.message : String(err) });
  } finally {
    button.disabled = false;
  }
}
