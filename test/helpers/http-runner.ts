/**
 * The LAN server alone in a process, for the crash and disk-full tests:
 * `node --import tsx http-runner.ts <dataDir> [maxUploadMB]`.
 *
 * Builds HttpService over <dataDir> (yachay.db, store/, uploads/, sources/ inside it), creates
 * the teacher `maestra` (password `correct horse battery`) if missing, and prints one JSON line
 * `{"port":N,"pid":P}` on stdout once it listens. SIGTERM/SIGINT stop it cleanly.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { HttpService } from '../../daemon/http/server.js';

const USER = 'maestra';
const PASSWORD = 'correct horse battery';

const [dataDir, maxMB] = process.argv.slice(2);
if (!dataDir) throw new Error('usage: http-runner.ts <dataDir> [maxUploadMB]');
mkdirSync(join(dataDir, 'store'), { recursive: true });
const db = openDb(join(dataDir, 'yachay.db'));
const users = new Users(db);
if (!users.get(USER)) await users.add(USER, PASSWORD, 'teacher');
const svc = new HttpService({
  cfg: { host: '127.0.0.1', port: 0, maxUploadMB: Number(maxMB ?? 50), loginAttemptsPerMinute: 100, studentsNeedLogin: false },
  log: pino({ level: process.env.YACHAY_LOG_LEVEL ?? 'silent' }, pino.destination(2)),
  db,
  store: join(dataDir, 'store'),
  lessons: { list: () => [], get: () => undefined },
  users,
  health: () => ({ db: true }),
  onUpload: async () => ({ lessonId: 'les-new' }),
});
await svc.start(new AbortController().signal);
process.stdout.write(JSON.stringify({ port: svc.port, pid: process.pid }) + '\n');
const stop = (): void => { void svc.stop().then(() => { db.close(); process.exit(0); }); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
