import t from 'tap';
import type { Shot, ShotClass } from '../../../daemon/optimize/shots.js';
import { FEATURE_COUNT, QP_INDEX, shotFeatures } from '../../../daemon/models/rate/features.js';
import { RATE_INPUT, RATE_OUTPUT } from '../../../daemon/models/rate/predict.js';
import type { RateSession } from '../../../daemon/models/rate/predict.js';
import { FPS_INDEX, parseClasses, parseRates, pickRate, relativeBytes } from '../../../daemon/models/rate/rates.js';
import { sweepRates } from '../../../daemon/models/rate/sweep.js';
import { backToRules, makePlan } from '../../../daemon/optimize/plan.js';
import type { MediaInfo } from '../../../daemon/optimize/probe.js';
import { float32 } from '../../../daemon/models/runtime.js';
import { isYachayError } from '../../../daemon/errors.js';
import { readFileSync } from 'node:fs';
import { exportOnnx } from '../../../daemon/models/rate/onnx-export.js';
import { fpsClassesOfFile } from '../../../daemon/models/rate/metadata.js';
import { fpsClassesOf } from '../../../daemon/models/rate/train.js';
import type { RateNet } from '../../../daemon/models/rate/train.js';
import type { EncodeRow } from '../../../daemon/models/rate/sweep.js';
import { featureVector } from '../../../daemon/models/rate/features.js';
import { SHIPPED_MODEL } from '../../../daemon/models/rate/predict.js';

const shot = (cls: ShotClass): Pick<Shot, 'cls' | 'start' | 'end' | 'video'> => ({
  cls, start: 0, end: 12, video: { diff: 8, diffP90: 12, ti: 20, si: 40, edges: 0.05, edgeGrowth: 0 },
});

/** A stand-in model: quality as a function of (fps, QP) only. */
function fake(f: (fps: number, qp: number) => number): RateSession {
  return {
    async run(feeds) {
      const x = feeds[RATE_INPUT]!.data as Float32Array;
      const n = x.length / FEATURE_COUNT;
      return { [RATE_OUTPUT]: float32([n, 1], Array.from({ length: n }, (_, i) => f(x[i * FEATURE_COUNT + FPS_INDEX]!, x[i * FEATURE_COUNT + QP_INDEX]!))) };
    },
  };
}

t.test('collect --rates / --classes parsing', async (t) => {
  t.same(parseRates(['motion=10,3,6', 'talking_head=15', 'motion=6,15']), { motion: [3, 6, 10, 15], talking_head: [15] });
  t.same(parseRates('board=3'), { board: [3] });
  t.equal(parseRates(undefined), undefined);
  for (const bad of ['motion', 'moving=3', 'motion=0', 'motion=3.5', 'motion=120']) {
    let err: unknown;
    try { parseRates([bad]); } catch (e) { err = e; }
    t.ok(isYachayError(err, 'YCH_ERR_USAGE'), `refused: ${bad}`);
  }
  t.same(parseClasses('motion, talking_head'), ['motion', 'talking_head']);
  t.throws(() => parseClasses('motion,faces'), /--classes/);
  t.equal(parseClasses(undefined), undefined);
});

t.test('the sweep codes each asked rate once, none above the source', async (t) => {
  t.same(sweepRates('motion', 30, undefined), [6], 'the class rate when none is asked');
  t.same(sweepRates('motion', 30, { motion: [10, 3, 6] }), [3, 6, 10]);
  t.same(sweepRates('talking_head', 12, { talking_head: [10, 15, 30] }), [10, 12], 'a 12 fps source caps 15 and 30 at 12');
  t.same(sweepRates('slide', 30, { motion: [10] }), [1], 'classes not named keep their rate');
});

t.test('byte estimate: more frames cost more, a coarser quantiser less', async (t) => {
  t.ok(relativeBytes('motion', 10, 39) > relativeBytes('motion', 6, 39));
  t.ok(relativeBytes('motion', 6, 45) < relativeBytes('motion', 6, 39));
});

t.test('pickRate: the cheapest (fps, QP) pair the model expects to pass', async (t) => {
  const motion = shotFeatures(shot('motion'), { width: 1280, height: 720, fps: 6 });
  // judder-limited: quality rises with frames more than it falls with the quantiser up to a point
  const judder = fake((fps, qp) => 0.7 + 0.01 * fps - 0.004 * (qp - 33));
  const pick = await pickRate(judder, motion, 0.75, { margin: 0, baseFps: 30, ruleFps: 6 });
  t.ok(pick, 'something passes');
  // every pair the model accepts, by the same byte estimate: the pick is the cheapest
  let cheapest = Infinity;
  for (const fps of [3, 5, 6, 10, 15]) for (let qp = 33; qp <= 48; qp++) {
    if (0.7 + 0.01 * fps - 0.004 * (qp - 33) >= 0.75) cheapest = Math.min(cheapest, relativeBytes('motion', fps, qp));
  }
  t.equal(pick!.bytes, cheapest);
  t.not(pick!.fps, 6, 'here the cheapest pair is not the rules\' frame rate');

  const quantiserOnly = fake((_fps, qp) => (qp <= 42 ? 0.8 : 0.7));
  const q = await pickRate(quantiserOnly, motion, 0.75, { margin: 0, baseFps: 30, ruleFps: 6 });
  t.same({ fps: q!.fps, qp: q!.qp }, { fps: 3, qp: 42 }, 'frames buy nothing: the fewest');

  t.equal(await pickRate(fake(() => 0.5), motion, 0.75, { margin: 0, baseFps: 30, ruleFps: 6 }), undefined, 'nothing passes: the rules stay');
  // a model that likes every frame it gets: on a 5 fps source, 10 and 15 are not on offer
  const slow = await pickRate(fake((fps) => (fps >= 5 ? 0.8 : 0.7)), motion, 0.75, { margin: 0, baseFps: 5, ruleFps: 5 });
  t.equal(slow!.fps, 5, 'never above the source\'s rate');
  await t.rejects(pickRate(judder, [...motion, 39], 0.75, { margin: 0, baseFps: 30, ruleFps: 6 }), /shot features/);
});

t.test('a missed shot whose rate the model changed goes back to the rules\' rate and quantiser', async (t) => {
  const info = { path: 'x.mp4', duration: 30, video: { width: 1280, height: 720, displayWidth: 1280, displayHeight: 720, fps: 30 } } as unknown as MediaInfo;
  const s = (index: number, start: number, end: number, cls: ShotClass): Shot => ({
    index, start, end, cls, video: shot(cls).video, audio: { speech: 1, music: 0, silence: 0, kind: 'speech' },
  } as unknown as Shot);
  const rules = makePlan(info, [s(0, 0, 12, 'motion'), s(1, 12, 20, 'motion'), s(2, 20, 30, 'motion')], { segmentSeconds: 6 });
  const r0 = rules.renditions[0]!;
  const model = { ...rules, renditions: [{ ...r0, shots: [{ fps: 10, qp: 44 }, { fps: 3, qp: 36 }, { fps: 10, qp: 44 }] }, rules.renditions[1]!] };
  const back = backToRules(model, rules, 'v0', [0, 1]);
  t.same(back.shots, [0, 1]);
  t.same(back.plan.renditions[0]!.shots, [r0.shots[0], r0.shots[1], { fps: 10, qp: 44 }], 'the shot that met its floor keeps the model\'s choice');
});

t.test('a model file says which classes it learnt frame rates for; older files none', async (t) => {
  const row = (cls: ShotClass, fps: number): EncodeRow => ({
    lesson: 'x', shot: 0, cls, features: featureVector(shot(cls), { width: 1280, height: 720, fps }, 39),
    settings: { qp: 39, fps, width: 1280, height: 720 }, quality: { metric: 'ssim', value: 0.8, floor: 0.75 }, bytes: 1,
  });
  t.same(fpsClassesOf([row('motion', 6), row('motion', 10), row('talking_head', 15), row('slide', 1), row('slide', 1)]), ['motion']);
  t.same(fpsClassesOf([row('motion', 6)]), [], 'one rate per class: nothing learnt about rates');
  const net: RateNet = {
    version: 1, featureNames: [], mean: new Float32Array(FEATURE_COUNT), std: new Float32Array(FEATURE_COUNT).fill(1),
    layers: [{ inDim: FEATURE_COUNT, outDim: 1, kernel: new Float32Array(FEATURE_COUNT), bias: new Float32Array(1), activation: 'sigmoid' }],
  };
  t.same(fpsClassesOfFile(exportOnnx({ ...net, fpsClasses: ['motion', 'talking_head'] })), ['motion', 'talking_head']);
  t.same(fpsClassesOfFile(exportOnnx(net)), [], 'no key: none');
  t.same(fpsClassesOfFile(new Uint8Array([1, 2, 3])), [], 'not a model: none');
  t.same(fpsClassesOfFile(readFileSync(SHIPPED_MODEL)), [], 'the shipped model predates the fps sweep: the rules keep their rates');
});
