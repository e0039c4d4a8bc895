import t from 'tap';
import { join } from 'node:path';
import { makeSampleLecture } from '../../daemon/sample/lecture.js';
import { loadDataset } from '../../daemon/models/rate/store.js';
import { FEATURE_COUNT } from '../../daemon/models/rate/features.js';
import { jobsRig } from '../helpers/jobs.js';
import { yachay } from '../helpers/cli.js';

// The feedback loop on a real box data folder: a teacher's lesson is optimized with the models
// on and verified; every measured shot becomes a training row in SQLite; `yachay models train`
// learns from those rows and the registry decides whether the new version serves.

t.test('a verified lesson feeds the rate model, and train proposes a version from it', async (t) => {
  const dir = t.testdir();
  const data = join(dir, 'data');
  const src = join(dir, 'clase.mp4');
  await makeSampleLecture(src, { seconds: 12, lang: 'es', kinds: ['slide', 'talking_head', 'motion'] });
  const r = jobsRig(data, { verify: true });
  t.teardown(() => r.close());
  const lesson = r.lessons.create({ title: 'Clase de prueba', source: src });
  const id = r.queue.enqueue('optimize', { lessonId: lesson.id, source: src });
  await r.worker.start(new AbortController().signal);
  r.worker.wake();
  for (let i = 0; i < 600 && !['done', 'dead'].includes(r.queue.get(id)!.state); i++) await new Promise((res) => setTimeout(res, 200));
  t.equal(r.queue.get(id)!.state, 'done', JSON.stringify(r.queue.get(id)));

  const report = r.lessons.report(lesson.id) as { timings: Record<string, number> };
  t.ok(report.timings['model:vad'] !== undefined && report.timings['model:rate'] !== undefined, `models ran: ${JSON.stringify(report.timings)}`);
  const rows = loadDataset(r.db);
  t.ok(rows.length >= 2, `${rows.length} shots recorded`);
  for (const row of rows) {
    t.equal(row.lesson, lesson.id);
    t.equal(row.features.length, FEATURE_COUNT, 'features v1 with the QP');
    t.equal(row.features[FEATURE_COUNT - 1], row.settings.qp, 'the QP that was really used');
    t.ok(row.quality.value > 0 && row.quality.value <= 1.01, `${row.cls}: ${row.quality.metric} ${row.quality.value.toFixed(3)} (floor ${row.quality.floor})`);
  }
  t.ok(rows.some((x) => x.quality.metric === 'ocr') && rows.some((x) => x.quality.metric === 'ssim'), 'text and pictures measured');
  await r.close();

  // train: the box's rows plus the shipped set; kept (0) or refused as not better (65), never half
  const tr = await yachay(['models', 'train', '--data-dir', data, '--epochs', '30', '--json']);
  t.ok(tr.code === 0 || tr.code === 65, `train exit ${tr.code}: ${tr.stderr.slice(-400)}`);
  const list = await yachay(['models', 'list', '--data-dir', data, '--json']);
  t.equal(list.code, 0, list.stderr);
  const { versions } = JSON.parse(list.stdout) as { versions: Array<{ version: number; status: string }> };
  t.ok(versions.some((v) => v.version >= 2 && v.status === (tr.code === 0 ? 'active' : 'rejected')), `registry: ${list.stdout.trim().slice(0, 300)}`);
});
