import t from 'tap';
import { SPEECH_SAFE_BITRATE, makePlan, withMoreBits } from '../../../daemon/optimize/plan.js';
import { missesOf, samplesFor, shortfall, type Check } from '../../../daemon/optimize/verify.js';
import { CEILING_MARGIN, heldFloor } from '../../../daemon/optimize/ceiling.js';
import { describeMisses, nextAttempt } from '../../../daemon/optimize/optimizer.js';
import { withBoost } from '../../../daemon/optimize/boost.js';
import type { Shot, ShotClass } from '../../../daemon/optimize/shots.js';
import type { MediaInfo } from '../../../daemon/optimize/probe.js';

// Floors per shot: which shot missed, what the next attempt changes, what the teacher's boost does.

function shot(index: number, start: number, end: number, cls: ShotClass): Shot {
  return {
    index, start, end, cls,
    video: { diff: 0, diffP90: 0, ti: 0, si: 0, edges: 0, edgeGrowth: 0 },
    audio: { speech: 1, music: 0, silence: 0, kind: 'speech' },
  };
}

const info: MediaInfo = {
  path: 'in.mp4', duration: 40, sizeBytes: 1,
  video: { codec: 'h264', width: 1280, height: 720, displayWidth: 1280, displayHeight: 720, rotation: 0, fps: 30, variableFrameRate: false },
  audio: { codec: 'aac', sampleRate: 48000, channels: 2 },
};
// two heads and two slides: one of each misses, its twin of the same class does not
const shots = [shot(0, 0, 10, 'talking_head'), shot(1, 10, 20, 'slide'), shot(2, 20, 30, 'talking_head'), shot(3, 30, 40, 'slide')];
const plan = makePlan(info, shots, { segmentSeconds: 6 });

function check(kind: 'ocr' | 'ssim', s: number, value: number, floor: number, ceiling?: number): Check {
  const f = heldFloor(floor, ceiling);
  return { kind, shot: s, cls: plan.shots[s]!.cls, at: s * 10 + 5, value, floor: f, ok: value >= f, weight: 1, ceiling };
}

t.test('a miss is per shot: the class average no longer hides a shot under its floor', async (t) => {
  // head average (0.97 + 0.93) / 2 = 0.95 meets a 0.95 floor; shot 2 alone does not
  const checks = [check('ssim', 0, 0.97, 0.95), check('ocr', 1, 1, 0.97), check('ssim', 2, 0.93, 0.95), check('ocr', 3, 0.9, 0.97)];
  const misses = missesOf(plan, checks, []);
  t.same(misses.map((m) => [m.shot, m.kind, m.start, m.end]), [[2, 'picture', 20, 30], [3, 'text', 30, 40]]);
  t.equal(misses[0]!.floor, 0.95);
  t.ok(Math.abs(shortfall(misses) - (0.02 / 0.95 + 0.07 / 0.97)) < 1e-9, 'shortfall: relative distance summed');
  t.equal(shortfall([]), 0);
  t.match(describeMisses(misses), /^picture 0:20–0:30 SSIM 0\.930 < 0\.950, text 0:30–0:40 OCR 0\.900 < 0\.970$/);
});

t.test('the floor is lowered to what the source allows, never raised', async (t) => {
  t.equal(heldFloor(0.95, 0.928), 0.928 - CEILING_MARGIN, 'a noisy camera: 0.918');
  t.equal(heldFloor(0.95, 0.99), 0.95, 'a clean source keeps the floor');
  t.equal(heldFloor(0.95, undefined), 0.95);
  const [c] = missesOf(plan, [check('ssim', 0, 0.91, 0.95, 0.928)], []);
  t.match(c, { kind: 'picture', floor: 0.928 - CEILING_MARGIN, ceiling: 0.928 }, 'the miss carries the held floor and the ceiling');
  t.same(missesOf(plan, [check('ssim', 0, 0.925, 0.95, 0.928)], []), [], 'within the ceiling: no miss');
});

t.test('speech misses span the speech the analysis found', async (t) => {
  const stoi: Check = { kind: 'stoi', at: 0, value: 0.9, floor: 0.96, ok: false, weight: 1 };
  t.same(missesOf(plan, [stoi], [{ start: 3, end: 8 }, { start: 12, end: 19 }]), [{ start: 3, end: 19, kind: 'speech', value: 0.9, floor: 0.96 }]);
});

t.test('more bits only on the shots that missed, not on their class', async (t) => {
  const more = withMoreBits(plan, 'v0', [2]);
  const [low] = plan.renditions;
  t.same(more.renditions[0]!.shots[0], low!.shots[0], 'the other head is untouched');
  t.equal(more.renditions[0]!.shots[2]!.fps, 30, 'the missed head gets more frames first');
  t.same(more.renditions[1], plan.renditions[1], 'higher renditions untouched');
});

t.test('next attempt: near misses get a finer quantiser, far misses more frames; nothing left → none', async (t) => {
  const [low] = plan.renditions;
  const near = nextAttempt(plan, plan, { misses: missesOf(plan, [check('ssim', 0, 0.94, 0.95)], []) })!;
  t.same(near.only, ['v0']);
  t.equal(near.withAudio, false);
  t.same(near.plan.renditions[0]!.shots[0], { fps: low!.shots[0]!.fps, qp: low!.shots[0]!.qp - 3 });
  t.same(near.plan.renditions[0]!.shots[2], low!.shots[2], 'only the shot that missed');
  const far = nextAttempt(plan, plan, { misses: missesOf(plan, [check('ssim', 2, 0.8, 0.95), check('ocr', 3, 0.8, 0.97)], []) })!;
  t.equal(far.plan.renditions[0]!.shots[2]!.fps, 30);
  t.equal(far.plan.renditions[0]!.shots[3]!.qp, low!.shots[3]!.qp - 3);
  t.same(far.plan.renditions[0]!.shots[1], low!.shots[1], 'the slide that met its floor keeps its bits');
  // at the limits (QP 14, full frame rate) another encode would change nothing
  const maxed = { ...plan, renditions: [{ ...low!, shots: low!.shots.map(() => ({ fps: 30, qp: 14 })) }, plan.renditions[1]!] };
  t.equal(nextAttempt(maxed, plan, { misses: missesOf(maxed, [check('ssim', 0, 0.8, 0.95)], []) }), undefined);
  const speech = nextAttempt(plan, plan, { misses: [{ start: 0, end: 9, kind: 'speech', value: 0.9, floor: 0.96 }] })!;
  t.same(speech.only, []);
  t.equal(speech.withAudio, true);
  t.equal(speech.plan.audio!.opus.bitrate, SPEECH_SAFE_BITRATE, 'the speech rate below the safe one goes back to it first');
  t.ok(plan.audio!.opus.bitrate < SPEECH_SAFE_BITRATE, 'the plan starts below it');
  const again = nextAttempt(speech.plan, plan, { misses: [{ start: 0, end: 9, kind: 'speech', value: 0.9, floor: 0.96 }] })!;
  t.equal(again.plan.audio!.opus.bitrate, SPEECH_SAFE_BITRATE + 6000, 'then 6 kb/s more');
  const gated = { ...plan, audio: { ...plan.audio!, gate: [{ start: 1, end: 2 }] } };
  const first = nextAttempt(gated, plan, { misses: [{ start: 0, end: 9, kind: 'speech', value: 0.9, floor: 0.96 }] })!;
  t.same(first.plan.audio!.gate, gated.audio.gate, 'the gate stays while the rate goes up to the safe one');
  const second = nextAttempt(first.plan, plan, { misses: [{ start: 0, end: 9, kind: 'speech', value: 0.9, floor: 0.96 }] })!;
  t.equal(second.plan.audio!.gate, undefined, 'then the gate goes');
  t.equal(second.plan.audio!.opus.bitrate, SPEECH_SAFE_BITRATE);
});

t.test('the teacher boost: more bits where the package missed, or on the whole lowest rendition', async (t) => {
  const [low] = plan.renditions;
  const where = withBoost(plan, { level: 1, spans: [{ start: 21, end: 29, kind: 'picture' }] });
  t.ok(where.renditions[0]!.shots[2]!.qp < low!.shots[2]!.qp || where.renditions[0]!.shots[2]!.fps > low!.shots[2]!.fps, 'the missed head gets more');
  t.same(where.renditions[0]!.shots[0], low!.shots[0], 'the rest is kept');
  t.match(where.shots[2]!.reason, /docente/, 'the plan says why');
  t.equal(where.audio!.opus.bitrate, plan.audio!.opus.bitrate, 'the voice was fine');
  const all = withBoost(plan, { level: 2 });
  t.equal(all.renditions[0]!.shots[1]!.qp, low!.shots[1]!.qp - 6, 'two levels, two steps');
  t.ok(all.renditions[0]!.shots.every((s, i) => s.qp < low!.shots[i]!.qp || s.fps > low!.shots[i]!.fps));
  t.equal(withBoost(plan, { level: 0 }), plan);
});

t.test('checked shots grow with the lesson, bounded', async (t) => {
  t.same([samplesFor(60, 'ocr'), samplesFor(60, 'ssim')], [8, 6], 'a short lesson: as before');
  t.same([samplesFor(30 * 60, 'ocr'), samplesFor(30 * 60, 'ssim')], [15, 15], 'one per 2 minutes');
  t.same([samplesFor(60 * 60, 'ocr'), samplesFor(60 * 60, 'ssim')], [24, 20], 'capped');
});
