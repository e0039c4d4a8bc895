import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeSampleLecture } from '../../daemon/sample/lecture.js';
import { FEATURE_COUNT, FEATURE_NAMES, FEATURES_VERSION, QP_INDEX } from '../../daemon/models/rate/features.js';
import { FPS_INDEX } from '../../daemon/models/rate/rates.js';
import { activeFile } from '../../daemon/models/rate/files.js';
import { exportOnnx } from '../../daemon/models/rate/onnx-export.js';
import type { DenseLayer, RateNet } from '../../daemon/models/rate/train.js';
import { yachay } from '../helpers/cli.js';

// The rate model's frame-rate choice end to end: a box whose active rate model says a motion
// shot needs 10 frames a second (at 6, the rules' rate, no quantiser passes) codes that shot at
// 10 fps, and verify measures the shot as published and holds it to the motion floor.

/**
 * A hand-set network with the trained one's graph (Sub, Div, MatMul, Relu, Sigmoid):
 * quality = sigmoid(3·min(fps, 10) − qp + 10.5). With the 0.01 margin over the 0.75 floor, a
 * QP passes while 3·min(fps, 10) − qp ≥ −9.35: at 10 and 15 fps up to QP 39, at 6 fps only
 * below 28 (under the class's range, which starts at 33). 15 fps buys nothing over 10 and
 * costs more bytes, so 10 it is.
 */
function handSet(): RateNet {
  const k1 = new Float32Array(FEATURE_COUNT * 3);
  k1[FPS_INDEX * 3 + 0] = 1; // fps
  k1[FPS_INDEX * 3 + 1] = 1; // fps − 10 (bias below)
  k1[QP_INDEX * 3 + 2] = 1; // qp
  const l1: DenseLayer = { inDim: FEATURE_COUNT, outDim: 3, kernel: k1, bias: Float32Array.from([0, -10, 0]), activation: 'relu' };
  // min(fps, 10) = relu(fps) − relu(fps − 10)
  const l2: DenseLayer = { inDim: 3, outDim: 1, kernel: Float32Array.from([3, -3, -1]), bias: Float32Array.from([10.5]), activation: 'sigmoid' };
  return {
    version: FEATURES_VERSION, featureNames: FEATURE_NAMES,
    mean: new Float32Array(FEATURE_COUNT), std: new Float32Array(FEATURE_COUNT).fill(1), layers: [l1, l2],
    // as if trained on rows of motion at several frame rates: without it the rules' rate stays
    fpsClasses: ['motion'],
  };
}

t.test('the model\'s frame rate reaches the encode and verify holds the shot to its floor', async (t) => {
  const dir = t.testdir();
  const src = join(dir, 'movimiento.mp4');
  await makeSampleLecture(src, { seconds: 6, lang: 'es', kinds: ['motion'] });
  const data = join(dir, 'data');
  mkdirSync(dirname(activeFile(data)), { recursive: true });
  writeFileSync(activeFile(data), exportOnnx(handSet()));
  const out = join(dir, 'out');
  const r = await yachay(['optimize', src, '--out', out, '--data-dir', data, '--models', 'rate']);
  t.equal(r.code, 0, r.stderr);

  const plan = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')) as { shots: Array<{ index: number; start: number; end: number; cls: string }>; renditions: Array<{ shots: Array<{ fps: number; qp: number }> }> };
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as {
    attempts: number; models: { rate: { model: string; shots: Array<{ shot: number; fps: number; ruleFps: number; model: number }> } };
    verify: { checks: Array<{ kind: string; shot?: number; value: number; floor: number; ok: boolean }>; misses: unknown[] };
  };
  const i = plan.shots.findIndex((s) => s.cls === 'motion');
  t.ok(i >= 0, 'the clip is a motion shot');
  const motion = plan.shots[i]!;
  t.equal(report.models.rate.model, 'registry', 'the box\'s own model served');
  t.same(report.models.rate.shots.find((s) => s.shot === motion.index), { shot: motion.index, cls: 'motion', rule: 39, model: 39, ruleFps: 6, fps: 10 }, 'the model chose 10 fps');
  t.same(plan.renditions[0]!.shots[i], { fps: 10, qp: 39 }, 'and the published plan kept it');
  t.equal(report.attempts, 1, 'no re-encode was needed');

  // the encode: frames of the lowest rendition inside the shot, away from its edges
  const pts = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', join(out, 'v0', 'index.m3u8')], { encoding: 'utf8' })
    .stdout.trim().split('\n').map(Number);
  const a = motion.start + 1; const b = motion.end - 1;
  const inside = pts.filter((p) => p >= a && p < b).length;
  t.ok(Math.abs(inside - 10 * (b - a)) <= 2, `${inside} frames in ${(b - a).toFixed(1)} s: 10 fps, not the rules' 6`);

  const check = report.verify.checks.find((c) => c.kind === 'ssim' && c.shot === motion.index);
  t.ok(check, 'verify measured the shot');
  t.ok(check!.ok && check!.value >= check!.floor, `SSIM ${check!.value} ≥ ${check!.floor}`);
  t.same(report.verify.misses, []);
});
