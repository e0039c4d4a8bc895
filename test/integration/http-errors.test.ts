import t from 'tap';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { buildApp } from '../../daemon/http/server.js';
import { ERRORS, YachayError } from '../../daemon/errors.js';
import type { ErrorSpec } from '../../daemon/errors.js';
import { run } from '../../daemon/media/run.js';
import { speak } from '../../daemon/sample/lecture.js';
import { sourceFiles, stripComments } from '../helpers/import-graph.js';

// issue 12 item 6: one error catalogue. The LAN server's YCH_HTTP_* codes are entries of
// daemon/errors.ts with their HTTP status; routes throw YachayError; the error handler answers
// with status, code, message and hint.

const DAEMON = fileURLToPath(new URL('../../daemon', import.meta.url));

/** The statuses the pages and tests knew before the merge (http/routes/common.ts's HttpError calls). */
const BEFORE: Record<string, number> = {
  YCH_HTTP_BAD_ACCOUNT: 400, YCH_HTTP_BAD_HEADER: 400, YCH_HTTP_BAD_PATH: 400, YCH_HTTP_EMPTY: 400, YCH_HTTP_BAD_REQUEST: 400,
  YCH_HTTP_BAD_LOGIN: 401, YCH_HTTP_BAD_SETUP_TOKEN: 401, YCH_HTTP_LOGIN_REQUIRED: 401,
  YCH_HTTP_CROSS_ORIGIN: 403, YCH_HTTP_FORBIDDEN: 403, YCH_HTTP_NOT_FOUND: 404,
  YCH_HTTP_NOT_ENROLLED: 409, YCH_HTTP_NOT_READY: 409, YCH_HTTP_OFFSET_MISMATCH: 409, YCH_HTTP_SETUP_DONE: 409,
  YCH_HTTP_UPLOAD_BUSY: 409, YCH_HTTP_USER_EXISTS: 409, YCH_HTTP_NO_SOURCE: 410, YCH_HTTP_LENGTH_REQUIRED: 411,
  YCH_HTTP_TOO_LARGE: 413, YCH_HTTP_NOT_MEDIA: 415, YCH_HTTP_TOO_MANY_LOGINS: 429, YCH_HTTP_INTERNAL: 500,
  YCH_HTTP_BUSY: 503, YCH_HTTP_DAMAGED: 503, YCH_HTTP_NO_QUEUE: 503, YCH_HTTP_STOPPING: 503, YCH_HTTP_DISK_FULL: 507,
};

t.test('every YCH_HTTP code is in the one catalogue with the status it always had', async (t) => {
  const spec = ERRORS as Record<string, ErrorSpec>;
  for (const [code, status] of Object.entries(BEFORE)) t.equal(spec[code]?.status, status, `${code} → ${status}`);
  const used = new Map<string, string>();
  for (const f of sourceFiles(DAEMON)) {
    for (const m of stripComments(readFileSync(f, 'utf8')).matchAll(/YCH_HTTP_[A-Z_]+/g)) used.set(m[0], relative(DAEMON, f));
  }
  t.ok(used.size >= 25, `${used.size} YCH_HTTP codes used in daemon/`);
  for (const [code, file] of used) t.ok(spec[code]?.status, `${code} (${file}) has a catalogue entry with a status`);
  for (const f of sourceFiles(DAEMON)) {
    t.notMatch(readFileSync(f, 'utf8'), /new HttpError\(/, `${relative(DAEMON, f)} throws YachayError, not HttpError`);
  }
});

t.test('the server answers a YachayError with its status, code, message, hint and headers', async (t) => {
  const dir = t.testdir();
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const users = new Users(db);
  await users.add('maestra', 'correct horse battery', 'teacher');
  const app = await buildApp({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 1, loginAttemptsPerMinute: 10, studentsNeedLogin: false },
    log: pino({ level: 'silent' }), db, store: join(dir, 'store'), lessons: new Lessons(db), users, health: () => ({ db: true }),
  });
  t.teardown(() => app.close());

  const missing = await app.inject('/api/lessons/no-such-lesson');
  t.equal(missing.statusCode, 404);
  t.same(missing.json(), { error: 'YCH_HTTP_NOT_FOUND', message: 'no such lesson', hint: ERRORS.YCH_HTTP_NOT_FOUND.hint });

  const anon = await app.inject({ method: 'POST', url: '/api/uploads', headers: { 'upload-length': '10' } });
  t.equal(anon.statusCode, 401);
  t.equal(anon.json().error, 'YCH_HTTP_LOGIN_REQUIRED');
  t.equal(anon.headers['www-authenticate'], 'Bearer', 'headers travel with the error');

  const bad = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'maestra', password: 'wrong password!' } });
  t.equal(bad.statusCode, 401);
  t.match(bad.json(), { error: 'YCH_HTTP_BAD_LOGIN', hint: /yachay users passwd/ });

  const login = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'maestra', password: 'correct horse battery', bearer: true } });
  const auth = { authorization: `Bearer ${login.json().token as string}` };
  const big = await app.inject({ method: 'POST', url: '/api/uploads', headers: { ...auth, 'upload-length': String(5 * 1024 * 1024) } });
  t.equal(big.statusCode, 413);
  t.match(big.json(), { error: 'YCH_HTTP_TOO_LARGE', message: /over the 1 MB limit/, hint: /maxUploadMB/ });
  t.equal(big.headers.connection, 'close');
});

t.test('a catalogue error without an HTTP status is a 500 whose message stays in the log', async (t) => {
  const e = new YachayError('YCH_ERR_IO', 'disk /dev/sda1 read error at sector 7');
  t.equal(e.status, 500);
  t.equal(new YachayError('YCH_HTTP_NOT_FOUND', 'x').status, 404);
  t.equal(new YachayError('YCH_HTTP_NOT_FOUND', 'x', { status: 410 }).status, 410, 'a call may override the status');
});

t.test('espeak-ng failing names espeak-ng, not ffmpeg', async (t) => {
  // espeak-ng exits 0 when it cannot write: the sample lecture used to fail later, in ffmpeg
  const err = await speak('hola', 'es', join(t.testdir(), 'no-such-dir', 'x.wav')).then(() => undefined, (e: unknown) => e);
  t.match(err, { code: 'YCH_ERR_ESPEAK_FAILED', message: /espeak-ng wrote no sound .*Can't write/ });
  t.notMatch((err as YachayError).hint, /ffmpeg/);
  t.match((err as YachayError).hint, /espeak-ng/);
  const path = process.env.PATH;
  process.env.PATH = t.testdir();
  try {
    const gone = await run('espeak-ng', ['hola']).then(() => undefined, (e: unknown) => e);
    t.match(gone, { code: 'YCH_ERR_ESPEAK_MISSING' });
    t.match((gone as YachayError).hint, /apt-get install -y espeak-ng/);
  } finally {
    process.env.PATH = path;
  }
});
