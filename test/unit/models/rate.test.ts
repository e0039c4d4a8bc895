import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDb } from '../../../daemon/db/db.js';
import { isYachayError } from '../../../daemon/errors.js';
import type { Shot, ShotClass } from '../../../daemon/optimize/shots.js';
import { FEATURE_COUNT, FEATURE_NAMES, QP_INDEX, SHOT_CLASSES, classOf, featureVector, shotFeatures } from '../../../daemon/models/rate/features.js';
import type { EncodeRow } from '../../../daemon/models/rate/sweep.js';
import { lectureVariant, seeded } from '../../../daemon/models/rate/sweep.js';
import { evaluate, lectureSource, predictNet, splitByLecture, trainRate } from '../../../daemon/models/rate/train.js';
import { exportOnnx, parityCheck } from '../../../daemon/models/rate/onnx-export.js';
import { active, list, propose, rollback } from '../../../daemon/models/rate/registry.js';
import { activeFile } from '../../../daemon/models/rate/files.js';
import { RATE_INPUT, RATE_OUTPUT, pickQp } from '../../../daemon/models/rate/predict.js';
import type { RateSession } from '../../../daemon/models/rate/predict.js';
import { appendJsonl, loadDataset, readJsonl, recordEncodes } from '../../../daemon/models/rate/store.js';
import { float32 } from '../../../daemon/models/runtime.js';
import { parseSeeds } from '../../../daemon/models/cli.js';

const shot = (cls: ShotClass, over: Partial<Shot['video']> = {}): Pick<Shot, 'cls' | 'start' | 'end' | 'video'> => ({
  cls, start: 2, end: 2 + Math.E ** 2,
  video: { diff: 1, diffP90: 2, ti: 3, si: 4, edges: 0.05, edgeGrowth: 0.01, ...over },
});

/**
 * A made-up world with the real one's shape: quality falls off a cliff past a QP that depends
 * on the class and on how busy the picture is. Each "lecture" draws its own shots.
 */
function synthetic(lectures: number, seed = 3): EncodeRow[] {
  const rnd = seeded(seed);
  const rows: EncodeRow[] = [];
  for (let l = 0; l < lectures; l++) {
    for (let s = 0; s < 8; s++) {
      const cls = SHOT_CLASSES[s % 4]!;
      const sh = shot(cls, { diff: rnd() * 4, ti: rnd() * 10, si: 20 + rnd() * 40, edges: rnd() * 0.1 });
      const knee = { slide: 42, board: 40, talking_head: 36, motion: 34 }[cls] - 0.4 * sh.video.ti;
      for (let qp = 20; qp <= 50; qp += 3) {
        const value = 0.5 + 0.5 / (1 + Math.exp((qp - knee) / 2.5));
        rows.push({
          lesson: `syn-${l}`, shot: s, cls, features: featureVector(sh, { width: 1280, height: 720, fps: 15 }, qp),
          settings: { qp, fps: 15, width: 1280, height: 720 }, quality: { metric: cls === 'slide' || cls === 'board' ? 'ocr' : 'ssim', value, floor: 0.9 }, bytes: 1000 * (60 - qp),
        });
      }
    }
  }
  return rows;
}

t.test('feature vector v1: documented order, one-hot class, log duration, QP last', async (t) => {
  t.same(FEATURE_NAMES, ['diff', 'diffP90', 'ti', 'si', 'edges', 'edgeGrowth', 'cls_slide', 'cls_board', 'cls_talking_head', 'cls_motion',
    'log_duration', 'width', 'height', 'fps', 'qp']);
  t.equal(FEATURE_COUNT, 15);
  const x = featureVector(shot('talking_head'), { width: 1280, height: 720, fps: 15 }, 37);
  t.same(x.slice(0, 6), [1, 2, 3, 4, 0.05, 0.01]);
  t.same(x.slice(6, 10), [0, 0, 1, 0], 'talking_head one-hot');
  t.ok(Math.abs(x[10]! - 2) < 1e-12, 'log of an e² second shot is 2');
  t.same(x.slice(11), [1280, 720, 15, 37]);
  t.equal(x[QP_INDEX], 37);
  t.equal(classOf(x), 'talking_head');
  t.equal(shotFeatures(shot('motion'), { width: 1, height: 1, fps: 6 }).length, QP_INDEX, 'shot features leave the QP out');
});

t.test('seeds, lecture variants and the held-out split', async (t) => {
  t.same(parseSeeds('11-13,20'), [11, 12, 13, 20]);
  t.throws(() => parseSeeds('13-11'), /bad range/);
  t.same(lectureVariant(12, 'en', 60), lectureVariant(12, 'en', 60), 'a seed names one lecture');
  t.not(JSON.stringify(lectureVariant(11, 'es', 60).sample.kinds), JSON.stringify(lectureVariant(14, 'es', 60).sample.kinds), 'seeds reorder segments');
  const rows = synthetic(8);
  const s = splitByLecture(rows);
  t.ok(s.heldOut.length > 0 && s.train.length > 0);
  const trainL = new Set(s.train.map((r) => r.lesson));
  t.ok(s.heldOutLessons.every((l) => !trainL.has(l)), 'no lecture on both sides');
  const old = new Set(synthetic(12).map((r) => r.lesson));
  const held12 = splitByLecture(synthetic(12)).heldOutLessons;
  t.same(splitByLecture(synthetic(20)).heldOutLessons.filter((l) => old.has(l)), held12, 'more lectures do not move the old ones across the split');
  t.same(['es-11', 'eval-en-12', 'x-y-es-3', 'syn-4', 'talk'].map(lectureSource), ['', 'eval', 'x-y', '', '']);
  const named = (names: string[]): EncodeRow[] => names.map((lesson) => ({ ...rows[0]!, lesson }));
  const base = ['es', 'en'].flatMap((l) => [11, 12, 13, 14, 15, 16, 17, 18].map((n) => `${l}-${n}`));
  const heldBase = splitByLecture(named(base)).heldOutLessons;
  const evals = ['eval-es-11', 'eval-en-12', 'eval-es-13', 'eval-en-14'];
  const both = splitByLecture(named([...base, ...evals])).heldOutLessons;
  t.same(both.filter((l) => lectureSource(l) === ''), heldBase, 'a new source leaves the old split alone');
  t.ok(both.some((l) => lectureSource(l) === 'eval'), 'and has a lecture of its own held out');
});

t.test('store: rows round-trip through SQLite and JSONL; bad rows are refused whole', async (t) => {
  const dir = t.testdir();
  const db = openDb(join(dir, 'y.db'));
  t.teardown(() => db.close());
  const rows = synthetic(2).slice(0, 30);
  recordEncodes(db, rows);
  t.same(loadDataset(db), rows.map((r) => ({ ...r, source: undefined })));
  const file = join(dir, 'd.jsonl');
  await appendJsonl(file, rows.slice(0, 10));
  await appendJsonl(file, rows.slice(10));
  t.same(await readJsonl(file), rows);
  t.throws(() => recordEncodes(db, [{ ...rows[0]!, features: [1, 2] }]), /needs 15 finite features/);
  t.equal(loadDataset(db).length, 30, 'nothing of the refused batch was written');
  t.match(readFileSync(file, 'utf8').split('\n')[0], /^\{"v":1,"lesson":"syn-0"/);
});

t.test('training converges on a small synthetic set, and the ONNX file matches tfjs', async (t) => {
  const rows = synthetic(8);
  const split = splitByLecture(rows);
  const losses: number[] = [];
  const m = await trainRate(split.train, { seed: 7, epochs: 120, onEpoch: (_, l) => losses.push(l) });
  t.teardown(() => m.dispose());
  t.ok(losses.at(-1)! < losses[0]! / 5, `loss ${losses[0]!.toFixed(4)} → ${losses.at(-1)!.toFixed(5)}`);
  const held = evaluate(predictNet(m.net, split.heldOut.map((r) => r.features)), split.heldOut);
  t.ok(held.mae < 0.03, `held-out MAE ${held.mae.toFixed(4)}`);
  t.ok(held.floorSafeAccuracy > 0.9, `floor-safe ${held.floorSafeAccuracy.toFixed(3)}`);
  const again = await trainRate(split.train, { seed: 7, epochs: 120 });
  t.same(Array.from(again.net.layers[2]!.kernel), Array.from(m.net.layers[2]!.kernel), 'same seed, same weights');
  again.dispose();

  const dir = t.testdir();
  const file = join(dir, 'rate.onnx');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, exportOnnx(m.net));
  const p = await parityCheck(file, m, 600, 7);
  t.equal(p.n, 600);
  t.ok(p.maxAbsDiff <= 1e-5, `onnxruntime vs tfjs max |diff| ${p.maxAbsDiff.toExponential(2)}`);
  const js = predictNet(m.net, split.heldOut.slice(0, 50).map((r) => r.features));
  const tf = await m.predictTf(split.heldOut.slice(0, 50).map((r) => r.features));
  t.ok(js.every((v, i) => Math.abs(v - tf[i]!) < 1e-5), 'the plain JS forward pass is the same network');
});

t.test('registry: keeps a better model, refuses a worse one, rolls back', async (t) => {
  const dir = t.testdir();
  const db = openDb(join(dir, 'y.db'));
  t.teardown(() => db.close());
  const ctx = { db, dataDir: dir };
  const rows = synthetic(8, 5);
  const split = splitByLecture(rows);
  const weak = await trainRate(split.train, { seed: 1, epochs: 2 });
  const strong = await trainRate(split.train, { seed: 1, epochs: 100 });
  t.teardown(() => { weak.dispose(); strong.dispose(); });
  const weakOnnx = exportOnnx(weak.net); const strongOnnx = exportOnnx(strong.net);

  const v2 = await propose(ctx, { onnx: weakOnnx }, split.heldOut);
  t.equal(v2.status, 'active', 'the first version is kept when nothing is active');
  t.equal(v2.version, 2, 'numbered after the shipped v1');
  const v3 = await propose(ctx, { onnx: strongOnnx, metrics: { note: 'strong' } }, split.heldOut);
  t.equal(v3.status, 'active');
  t.equal(v3.parent, v2.id);
  t.ok(v3.metrics.heldOut!.mae < v3.metrics.baseline!.mae, 'judged against v2 on the same rows');
  t.same(readFileSync(activeFile(dir)), Buffer.from(strongOnnx), 'the active file is the new model');

  let err: unknown;
  try { await propose(ctx, { onnx: weakOnnx }, split.heldOut); } catch (e) { err = e; }
  t.ok(isYachayError(err, 'YCH_ERR_MODEL_REJECTED'), 'a worse model is refused');
  t.match((err as Error).message, /new MAE [\d.]+, floor-safe [\d.]+; active MAE [\d.]+, floor-safe [\d.]+/, 'both metrics in the message');
  t.same(list(db).map((v) => [v.version, v.status]), [[2, 'retired'], [3, 'active'], [4, 'rejected']]);
  t.equal(active(db)!.version, 3, 'the active version is unchanged');
  t.same(readFileSync(activeFile(dir)), Buffer.from(strongOnnx), 'and so is its file');

  const rb = await rollback(ctx);
  t.equal(rb.retired.version, 3);
  t.equal(rb.restored?.version, 2);
  t.equal(active(db)!.version, 2);
  t.same(readFileSync(activeFile(dir)), Buffer.from(weakOnnx), 'the previous file is back');
  await t.rejects(rollback(ctx), /no previous version/, 'nothing before v2 and no shipped model');
});

/** A stand-in model: quality as a function of the QP column only. */
function fake(f: (qp: number) => number): RateSession {
  return {
    async run(feeds) {
      const x = feeds[RATE_INPUT]!.data as Float32Array;
      const n = x.length / FEATURE_COUNT;
      return { [RATE_OUTPUT]: float32([n, 1], Array.from({ length: n }, (_, i) => f(x[i * FEATURE_COUNT + QP_INDEX]!))) };
    },
  };
}

t.test('pickQp: highest QP that clears floor + margin, inside default −6 … +9', async (t) => {
  const slide = shotFeatures(shot('slide'), { width: 1280, height: 720, fps: 1 }); // default QP 31
  const linear = fake((qp) => 1 - 0.01 * (qp - 30));
  t.equal(await pickQp(linear, slide, 0.945, { margin: 0, fallback: 31 }), 35);
  t.equal(await pickQp(linear, slide, 0.945, { margin: 0.02, fallback: 31 }), 33, 'a margin costs QPs');
  t.equal(await pickQp(fake(() => 1), slide, 0.97, { margin: 0, fallback: 31 }), 40, 'never above default + 9');
  t.equal(await pickQp(fake(() => 1), slide, 0.97, { margin: 0, max: 36, fallback: 31 }), 36, 'caller max');
  t.equal(await pickQp(fake(() => 0.5), slide, 0.97, { margin: 0, fallback: 31 }), 31, 'nothing passes: fallback');
  t.equal(await pickQp(fake((qp) => (qp >= 27 && qp <= 29 ? 0.5 : 1)), slide, 0.97, { margin: 0, fallback: 31 }), 26,
    'stops at the first predicted miss even if coarser QPs look fine again');
  const motion = shotFeatures(shot('motion'), { width: 1280, height: 720, fps: 6 }); // default QP 39
  t.equal(await pickQp(fake((qp) => (qp <= 30 ? 1 : 0)), motion, 0.75, { margin: 0, fallback: 39 }), 39, 'never below default − 6 (33): fallback');
  let calls = 0;
  const counting: RateSession = { run: async (f) => { calls++; return fake(() => 1).run(f); } };
  await pickQp(counting, motion, 0.75, { margin: 0, fallback: 39 });
  t.equal(calls, 1, 'one batch per shot');
});
