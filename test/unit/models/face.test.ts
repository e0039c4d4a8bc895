import t from 'tap';
import {
  decodeFaces, faceAnchors, iou, letterbox, nonMaxSuppression, shotRegion, sigmoid, unletterbox,
  type FaceDetection, type FaceFrame,
} from '../../../daemon/models/face.js';

// BlazeFace decoding without the model: synthetic outputs where we know the answer.

const N = 896;
const logit = (p: number): number => Math.log(p / (1 - p));

function face(xmin: number, ymin: number, xmax: number, ymax: number, score = 0.9): FaceDetection {
  return { score, xmin, ymin, xmax, ymax, keypoints: [[(xmin + xmax) / 2, (ymin + ymax) / 2]] };
}

t.test('anchors: 896, 16x16x2 then 8x8x6, centres at (x+0.5)/grid', async (t) => {
  const a = faceAnchors();
  t.equal(a.length, N);
  t.same(a[0], { cx: 0.5 / 16, cy: 0.5 / 16 });
  t.same(a[1], a[0], 'two anchors share the first cell');
  t.same(a[2], { cx: 1.5 / 16, cy: 0.5 / 16 }, 'row-major: next cell to the right');
  t.same(a[32], { cx: 0.5 / 16, cy: 1.5 / 16 }, 'second row after 16 cells x 2');
  t.same(a[511], { cx: 15.5 / 16, cy: 15.5 / 16 });
  t.same(a[512], { cx: 0.5 / 8, cy: 0.5 / 8 }, '8x8 grid starts at 512');
  t.same(a[517], a[512], 'six anchors per 8x8 cell');
  t.same(a[518], { cx: 1.5 / 8, cy: 0.5 / 8 });
  t.same(a[N - 1], { cx: 7.5 / 8, cy: 7.5 / 8 });
});

t.test('sigmoid clamps extreme logits instead of overflowing', async (t) => {
  t.equal(sigmoid(0), 0.5);
  t.equal(sigmoid(1e6), sigmoid(100));
  t.ok(sigmoid(-1e6) > 0 && sigmoid(-1e6) < 1e-40);
  t.ok(Number.isFinite(sigmoid(-1e300)));
});

t.test('decode: regressor offsets / 128 + anchor centre, sigmoid scores, threshold', async (t) => {
  const reg = new Float32Array(N * 16);
  const logits = new Float32Array(N).fill(-10);
  // anchor 600 sits in the 8x8 grid: (600-512)/6 = cell 14 → x=6, y=1
  const i = 600;
  logits[i] = logit(0.9);
  reg.set([12.8, -6.4, 32, 64, 0, 0, 12.8, 12.8], i * 16);
  logits[3] = logit(0.4); // below the default 0.5
  const d = decodeFaces(reg, logits);
  t.equal(d.length, 1);
  const f = d[0]!;
  const cx = 6.5 / 8 + 0.1;
  const cy = 1.5 / 8 - 0.05;
  t.ok(Math.abs(f.score - 0.9) < 1e-6, 'score is the sigmoid of the logit');
  t.ok(Math.abs(f.xmin - (cx - 0.125)) < 1e-6 && Math.abs(f.xmax - (cx + 0.125)) < 1e-6, 'x from dx and w');
  t.ok(Math.abs(f.ymin - (cy - 0.25)) < 1e-6 && Math.abs(f.ymax - (cy + 0.25)) < 1e-6, 'y from dy and h');
  t.equal(f.keypoints.length, 6);
  t.ok(Math.abs(f.keypoints[0]![0] - 6.5 / 8) < 1e-6, 'keypoint at the anchor centre when its offset is 0');
  t.ok(Math.abs(f.keypoints[1]![1] - (1.5 / 8 + 0.1)) < 1e-6);
  t.equal(decodeFaces(reg, logits, 0.3).length, 2, 'a lower threshold keeps the 0.4 anchor');
  t.throws(() => decodeFaces(reg.subarray(16), logits), RangeError);
});

t.test('iou', async (t) => {
  t.equal(iou(face(0, 0, 1, 1), face(0, 0, 1, 1)), 1);
  t.equal(iou(face(0, 0, 1, 1), face(2, 2, 3, 3)), 0);
  t.ok(Math.abs(iou(face(0, 0, 2, 1), face(1, 0, 3, 1)) - 1 / 3) < 1e-12);
});

t.test('NMS: overlapping boxes merge, distinct faces stay, best first', async (t) => {
  const a = face(0.1, 0.1, 0.3, 0.3, 0.9);
  const b = face(0.12, 0.1, 0.32, 0.3, 0.6); // same face, shifted
  const c = face(0.6, 0.6, 0.8, 0.8, 0.7); // another face
  const plain = nonMaxSuppression([b, c, a], 0.3, 'plain');
  t.same(plain, [a, c], 'plain keeps the best of each group');
  const w = nonMaxSuppression([b, c, a], 0.3, 'weighted');
  t.equal(w.length, 2);
  t.equal(w[0]!.score, 0.9, 'weighted keeps the top score');
  const want = (0.1 * 0.9 + 0.12 * 0.6) / 1.5;
  t.ok(Math.abs(w[0]!.xmin - want) < 1e-12, 'weighted averages coordinates by score');
  t.same(w[1], c, 'a lone box passes unchanged');
  t.same(nonMaxSuppression([], 0.3), []);
  t.equal(nonMaxSuppression([a, face(0.25, 0.25, 0.45, 0.45, 0.8)], 0.3).length, 2, 'a small overlap (iou < 0.3) is two faces');
});

t.test('letterbox maps model boxes back to source coordinates', async (t) => {
  const lb = letterbox(1920, 1080);
  t.same(lb, { width: 128, height: 72, padX: 0, padY: 28 });
  const tall = letterbox(720, 1280);
  t.same(tall, { width: 72, height: 128, padX: 28, padY: 0 });
  // a box filling the picture area (no bars) is the whole source frame
  const full = unletterbox(face(0, 28 / 128, 1, 100 / 128), lb);
  t.same([full.xmin, full.ymin, full.xmax, full.ymax], [0, 0, 1, 1]);
  const mid = unletterbox(face(0.25, 0.5, 0.75, 0.75), lb);
  t.ok(Math.abs(mid.ymin - (64 - 28) / 72) < 1e-12);
  t.equal(unletterbox(face(-0.1, 0, 0.1, 0.1), lb).xmin, 0, 'clamped to the frame');
});

t.test('shotRegion: median face grown downward and sideways, clamped; none when faces are rare', async (t) => {
  const at = (xmin: number, ymin: number): FaceFrame => ({ t: 0, faces: [face(xmin, ymin, xmin + 0.2, ymin + 0.2)] });
  const none: FaceFrame = { t: 0, faces: [] };
  const r = shotRegion([at(0.4, 0.1), at(0.42, 0.12), at(0.38, 0.08), none])!;
  t.ok(r, 'three of four frames have a face');
  // median face: 0.4..0.6 x 0.1..0.3; +0.5 w each side, +0.2 h above, +1.5 h below
  t.ok(Math.abs(r.x - 0.3) < 1e-9 && Math.abs(r.w - 0.4) < 1e-9, `x ${r.x} w ${r.w}`);
  t.ok(Math.abs(r.y - 0.06) < 1e-9 && Math.abs(r.h - (0.6 - 0.06)) < 1e-9, `y ${r.y} h ${r.h}`);
  t.ok(r.y + r.h > 0.3, 'region reaches below the face');

  t.equal(shotRegion([at(0.4, 0.1), none, none]), undefined, 'one face in three frames is not a talking head');
  t.ok(shotRegion([at(0.4, 0.1), none]), 'exactly half is enough');
  t.equal(shotRegion([]), undefined);

  const outlier = shotRegion([at(0.4, 0.1), at(0.4, 0.1), { t: 0, faces: [face(0.9, 0.9, 1, 1)] }])!;
  t.ok(Math.abs(outlier.x - 0.3) < 1e-9, 'a stray detection does not move the median');

  const edge = shotRegion([at(0.0, 0.6)])!;
  t.same([edge.x, edge.y + edge.h], [0, 1], 'clamped to [0,1]');
  const tight = shotRegion([at(0.4, 0.1)], { below: 0, sides: 0, above: 0 })!;
  t.ok(Math.abs(tight.w - 0.2) < 1e-9 && Math.abs(tight.h - 0.2) < 1e-9, 'options shrink it to the face');
});
