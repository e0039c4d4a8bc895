import t from 'tap';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { yachay } from '../helpers/cli.js';
import { openDb } from '../../daemon/db/db.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { JobQueue } from '../../daemon/jobs/queue.js';
import { OPTIMIZE } from '../../daemon/jobs/optimize-job.js';

// issue 12, item 1 (CLI): list, delete and retry lessons, as the interface says
t.test('yachay lessons list | delete | retry', async (t) => {
  const data = t.testdir();
  const sources = join(data, 'sources'); mkdirSync(sources, { recursive: true });
  const src = join(sources, 'rec.mp4'); writeFileSync(src, 'x');
  {
    const db = openDb(join(data, 'yachay.db'));
    const lessons = new Lessons(db); const queue = new JobQueue(db);
    lessons.create({ id: 'agua', title: 'El ciclo del agua', source: src });
    lessons.markReady('agua', { durationS: 60, path: 'agua', renditions: [], report: null });
    mkdirSync(join(data, 'store', 'agua'), { recursive: true });
    lessons.create({ id: 'suelo', title: 'El suelo', source: src });
    const job = queue.enqueue(OPTIMIZE, { lessonId: 'suelo', source: src }, { maxAttempts: 1 });
    db.prepare(`UPDATE jobs SET state = 'dead', last_error = 'YCH_ERR_INPUT_CORRUPT: rec.mp4: moov atom not found' WHERE id = ?`).run(job);
    lessons.setStatus('suelo', 'failed', 'YCH_ERR_INPUT_CORRUPT: rec.mp4: moov atom not found');
    db.close();
  }
  const list = await yachay(['lessons', 'list', '--data-dir', data]);
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, /^agua\tready\tlocal\tEl ciclo del agua$/m);
  t.match(list.stdout, /^suelo\tfailed\tlocal\tEl suelo\tYCH_ERR_INPUT_CORRUPT/m, 'a failed lesson shows its reason');
  const retry = await yachay(['lessons', 'retry', 'suelo', '--data-dir', data]);
  t.equal(retry.code, 0, retry.stderr);
  t.match(retry.stderr, /moov atom not found/, 'the reason is shown');
  const notFailed = await yachay(['lessons', 'retry', 'agua', '--data-dir', data]);
  t.equal(notFailed.code, 64);
  const del = await yachay(['lessons', 'delete', 'agua', '--data-dir', data]);
  t.equal(del.code, 0, del.stderr);
  t.notOk(existsSync(join(data, 'store', 'agua')), 'its folder is gone');
  t.ok(existsSync(src), 'a recording another lesson still uses is kept');
  const db = openDb(join(data, 'yachay.db'));
  t.teardown(() => db.close());
  t.same(new Lessons(db).list().map((l) => [l.id, l.status]), [['suelo', 'queued']]);
  t.same(new JobQueue(db).list({ state: 'queued' }).length, 1, 'the dead job is queued again');
  const help = await yachay(['--help']);
  t.match(help.stdout, /lessons list \| lessons delete <id> \| lessons retry <id>/);
  t.match(help.stdout, /lessons rename <id> --title T/);
});

t.test('yachay lessons rename ID --title T', async (t) => {
  const data = t.testdir();
  {
    const db = openDb(join(data, 'yachay.db'));
    new Lessons(db).create({ id: 'agua', title: 'El ciclo del agua' });
    db.close();
  }
  const ok = await yachay(['lessons', 'rename', 'agua', '--title', '  El agua en la Tierra ', '--data-dir', data]);
  t.equal(ok.code, 0, ok.stderr);
  t.equal(ok.stdout, 'agua\tEl agua en la Tierra\n');
  const blank = await yachay(['lessons', 'rename', 'agua', '--title', '   ', '--data-dir', data]);
  t.equal(blank.code, 64, 'a blank title is refused');
  t.match(blank.stderr, /1 to 200 characters/);
  t.equal((await yachay(['lessons', 'rename', 'agua', '--title', 'x'.repeat(201), '--data-dir', data])).code, 64, '201 characters');
  t.equal((await yachay(['lessons', 'rename', 'agua', '--data-dir', data])).code, 64, 'no --title');
  t.equal((await yachay(['lessons', 'rename', 'nada', '--title', 'x', '--data-dir', data])).code, 64, 'unknown lesson');
  const list = await yachay(['lessons', 'list', '--data-dir', data]);
  t.match(list.stdout, /^agua\tqueued\tlocal\tEl agua en la Tierra$/m, 'the box lists the new title');
});
