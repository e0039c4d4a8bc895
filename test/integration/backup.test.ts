import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ROOT, yachay } from '../helpers/cli.js';
import { makeClip } from '../helpers/media.js';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { JobQueue } from '../../daemon/jobs/queue.js';
import { OPTIMIZE } from '../../daemon/jobs/optimize-job.js';
import { rotate } from '../../daemon/backup/backup.js';

// issue 11, item 6: a backup taken from a running box in the middle of a job restores into an
// empty folder with the same users (their passwords work), lessons and jobs
t.test('backup of a live box during a job, restored into an empty data dir', async (t) => {
  const dir = t.testdir();
  const data = join(dir, 'box');
  const clip = makeClip(dir, 'clase', { seconds: 6, width: 640, height: 360 });
  {
    const db = openDb(join(data, 'yachay.db'));
    await new Users(db).add('directora', 'una clave larga 123', 'admin');
    const l = new Lessons(db).create({ title: 'Clase de prueba', source: clip });
    new JobQueue(db).enqueue(OPTIMIZE, { lessonId: l.id, source: clip });
    db.close();
  }
  mkdirSync(join(data, 'sync'), { recursive: true });
  writeFileSync(join(data, 'sync', 'hub-key.pem'), 'pretend key\n', { mode: 0o600 });
  const box = spawn(process.execPath, [BIN, 'start', '--data-dir', data, '--http-port', '0', '--mqtt-port', '0', '--mqtt-ws-port', '0'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, YACHAY_LOG_LEVEL: 'info' } });
  t.teardown(() => { if (box.exitCode === null) box.kill('SIGKILL'); });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no job started: ${log.slice(-2000)}`)), 60_000);
    box.stderr!.on('data', (c: Buffer) => {
      log += c.toString();
      if (/"state":"leased"|job (leased|started)|"msg":"job/.test(log)) { clearTimeout(timer); resolve(); }
    });
  });
  const backups = join(dir, 'usb');
  const b = await yachay(['backup', '--to', backups, '--data-dir', data]);
  t.equal(b.code, 0, b.stderr);
  const folder = b.stdout.trim();
  t.ok(existsSync(join(folder, 'backup.json')) && existsSync(join(folder, 'yachay.db')), `backup in ${folder}`);
  const exited = new Promise<number | null>((r) => box.once('exit', (c) => r(c)));
  box.kill('SIGTERM');
  t.equal(await exited, 0);

  const fresh = join(dir, 'new-box');
  const r = await yachay(['restore', '--from', backups, '--data-dir', fresh]);
  t.equal(r.code, 0, r.stderr);
  const again = await yachay(['restore', '--from', backups, '--data-dir', fresh]);
  t.equal(again.code, 73, 'a folder that holds a box is not overwritten without --force');
  const db = openDb(join(fresh, 'yachay.db'));
  t.teardown(() => db.close());
  t.ok(await new Users(db).verify('directora', 'una clave larga 123'), 'the admin logs in with the same password');
  t.same(new Lessons(db).list().map((l) => l.title), ['Clase de prueba'], 'the lesson');
  const jobs = db.prepare('SELECT kind, state FROM jobs').all() as Array<{ kind: string; state: string }>;
  t.equal(jobs.length, 1, `the job (${JSON.stringify(jobs)})`);
  t.ok(existsSync(join(fresh, 'sync', 'hub-key.pem')), 'the enrollment came along');

  // a damaged backup restores nothing
  const bad = join(backups, readdirSync(backups)[0]!, 'yachay.db');
  writeFileSync(bad, 'not a database');
  const broken = await yachay(['restore', '--from', backups, '--data-dir', join(dir, 'third')]);
  t.equal(broken.code, 65);
  t.match(broken.stderr, /yachay\.db is damaged/);
  t.notOk(existsSync(join(dir, 'third', 'yachay.db')), 'nothing restored');
});

t.test('nightly rotation keeps the newest N', async (t) => {
  const dir = t.testdir();
  for (const d of ['2026-12-01T02-00-00Z', '2026-12-02T02-00-00Z', '2026-12-03T02-00-00Z', '2026-12-03T03-00-00Z.tmp-99']) mkdirSync(join(dir, `yachay-backup-${d}`));
  t.same(await rotate(dir, 2), ['yachay-backup-2026-12-01T02-00-00Z']);
  t.same(readdirSync(dir).sort(), ['yachay-backup-2026-12-02T02-00-00Z', 'yachay-backup-2026-12-03T02-00-00Z', 'yachay-backup-2026-12-03T03-00-00Z.tmp-99']);
});
