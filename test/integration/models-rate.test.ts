import t from 'tap';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { loadNative } from '../../daemon/analysis/native.js';
import { isYachayError } from '../../daemon/errors.js';
import { makeSampleLecture } from '../../daemon/sample/lecture.js';
import { createProgress } from '../../daemon/optimize/progress.js';
import { sweepFile } from '../../daemon/models/rate/sweep.js';
import { FEATURE_COUNT } from '../../daemon/models/rate/features.js';
import { lectureFiles, parseOffsets, runModels } from '../../daemon/models/cli.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadRateModel, pickQp } from '../../daemon/models/rate/predict.js';
import { SHIPPED_DATASET, readJsonl } from '../../daemon/models/rate/store.js';
import { QP_INDEX } from '../../daemon/models/rate/features.js';

// One real row: a generated 4 s talking head, encoded alone at its class default and measured
// with the product's own SSIM, as `yachay models collect` does for every shot and QP.

const floors = { ocrRatio: 0.97, ssimTalkingHead: 0.95, ssimMotion: 0.75, stoi: 0.96 };

function sink(): { stream: NodeJS.WriteStream; lines: string[] } {
  const lines: string[] = [];
  const w = new Writable({ write(c: Buffer, _e, cb) { lines.push(...c.toString().split('\n').filter(Boolean)); cb(); } });
  return { stream: w as unknown as NodeJS.WriteStream, lines };
}

t.test('a sweep row from a real encode of a generated shot', async (t) => {
  const dir = t.testdir();
  const clip = join(dir, 'th.mp4');
  await makeSampleLecture(clip, { seconds: 4, lang: 'es', kinds: ['talking_head'] });
  const { stream, lines } = sink();
  const rows = await sweepFile(clip, {
    lesson: 'test-th', kernels: loadNative(), floors, lang: 'spa', offsets: [0], progress: createProgress(stream),
  });
  t.equal(rows.length, 1);
  const r = rows[0]!;
  t.equal(r.cls, 'talking_head');
  t.same(r.settings, { qp: 37, fps: 15, width: 1280, height: 720 }, 'the lowest rendition settings of the class');
  t.equal(r.features.length, FEATURE_COUNT);
  t.equal(r.quality.metric, 'ssim');
  t.equal(r.quality.floor, 0.95);
  t.ok(r.quality.value > 0.9 && r.quality.value <= 1, `SSIM ${r.quality.value}`);
  t.ok(r.bytes > 1000, `${r.bytes} bytes`);
  t.ok(lines.length >= 2 && lines.every((l) => typeof JSON.parse(l).progress === 'number'), 'progress as JSON lines off a terminal');

  const ac = new AbortController();
  const { stream: s2 } = sink();
  const progress = createProgress(s2);
  const stopAtStart = { ...progress, stage: (n: string, w: number) => { progress.stage(n, w); ac.abort(); } };
  await t.rejects(sweepFile(clip, { lesson: 'x', kernels: loadNative(), floors, lang: 'spa', progress: stopAtStart, signal: ac.signal }),
    { code: 'YCH_ERR_ABORTED' }, 'an abort stops the sweep');
});

t.test('yachay models: list on an empty box, usage errors, benchmark seeds refused', async (t) => {
  const dir = t.testdir();
  const out: string[] = [];
  const o = new Writable({ write(c: Buffer, _e, cb) { out.push(c.toString()); cb(); } });
  const { stream: err } = sink();
  const ctx = { dataDir: dir, log: pino({ level: 'silent' }), signal: new AbortController().signal, out: o, err };
  t.equal(await runModels(['list', '--json'], ctx), 0);
  const listed = JSON.parse(out.join('')) as { versions: unknown[]; activeIsShipped: boolean };
  t.same(listed.versions, []);
  t.equal(listed.activeIsShipped, true);
  t.equal(await runModels(['frobnicate'], ctx), 64);
  t.equal(await runModels(['list', '--bogus'], ctx), 64);
  let e: unknown;
  try { await runModels(['collect', '--seeds', '1-3'], ctx); } catch (x) { e = x; }
  t.ok(isYachayError(e, 'YCH_ERR_USAGE') && /benchmark/.test((e as Error).message), 'seeds 1-3 are the benchmark\'s');
  await t.rejects(runModels(['rollback'], ctx), { code: 'YCH_ERR_MODEL_MISSING' }, 'nothing to roll back');
});

t.test('collect --files/--from: lectures named after their folder, benchmark names refused', async (t) => {
  const dir = t.testdir();
  const mk = (name: string, gt?: object): string => {
    mkdirSync(join(dir, 'lec', name), { recursive: true });
    writeFileSync(join(dir, 'lec', name, 'lecture.mp4'), '');
    if (gt) writeFileSync(join(dir, 'lec', name, 'groundtruth.json'), JSON.stringify(gt));
    return join(dir, 'lec', name, 'lecture.mp4');
  };
  const a = mk('eval-es-11'); const b = mk('talk', { lang: 'en' });
  t.same((await lectureFiles({ from: join(dir, 'lec') })).map((l) => [l.lesson, l.lang]), [['eval-es-11', 'es'], ['talk', 'en']]);
  t.same((await lectureFiles({ files: `${a},${b}` })).map((l) => l.lesson), ['eval-es-11', 'talk']);
  const c = mk('clase');
  await t.rejects(lectureFiles({ files: c }), { code: 'YCH_ERR_USAGE' }, 'no language known');
  t.same((await lectureFiles({ files: c, lang: 'es' })).map((l) => l.lang), ['es']);
  const bench = mk('es-1');
  await t.rejects(lectureFiles({ files: bench }), /benchmark/, 'es-1 is a benchmark lecture');
  await t.rejects(lectureFiles({ from: join(dir, 'nothing-here-' + Date.now()) }));
  t.same(parseOffsets('9,-6,0,-3'), [-6, -3, 0, 9]);
  t.throws(() => parseOffsets('1,x'), /offsets/);
});

t.test('the shipped model loads through the manifest and picks a QP inside the class range', async (t) => {
  const rows = await readJsonl(SHIPPED_DATASET);
  const lectures = new Set(rows.map((r) => r.lesson));
  t.ok([...lectures].every((l) => /^(es|en)-1[1-8]$/.test(l) || /^eval-(es|en)-1[1-6]$/.test(l)), 'training lectures come from seeds 11-18 only');
  t.ok(lectures.has('es-11') && lectures.has('en-18'), 'sample-generator lectures');
  const m = await loadRateModel(undefined);
  t.teardown(() => m.session.dispose());
  t.equal(m.source, 'shipped');
  for (const cls of ['slide', 'board', 'talking_head', 'motion'] as const) {
    const r = rows.find((x) => x.cls === cls)!;
    const def = { slide: 31, board: 32, talking_head: 37, motion: 39 }[cls];
    const qp = await pickQp(m.session, r.features.slice(0, QP_INDEX), r.quality.floor, { margin: 0.01, fallback: def });
    t.ok(qp >= def - 6 && qp <= def + 9, `${cls}: QP ${qp} (default ${def})`);
  }
});
