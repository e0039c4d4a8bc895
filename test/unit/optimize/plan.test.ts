import t from 'tap';
import { CLASS_SETTINGS, keyframeTimes, lessonAudio, makePlan, outputSize, reclassShot, withMoreBits } from '../../../daemon/optimize/plan.js';
import { selectExpr, simulateSelect, zones } from '../../../daemon/optimize/encode.js';
import type { Shot, ShotClass } from '../../../daemon/optimize/shots.js';
import type { MediaInfo } from '../../../daemon/optimize/probe.js';

function shot(index: number, start: number, end: number, cls: ShotClass, speech = 1, music = 0): Shot {
  return {
    index, start, end, cls,
    video: { diff: 0, diffP90: 0, ti: 0, si: 0, edges: 0, edgeGrowth: 0 },
    audio: { speech, music, silence: 0, kind: music > speech ? 'music' : 'speech' },
  };
}

const info: MediaInfo = {
  path: 'in.mp4', duration: 30, sizeBytes: 1,
  video: { codec: 'h264', width: 1920, height: 1080, displayWidth: 1920, displayHeight: 1080, rotation: 0, fps: 29.97, variableFrameRate: false },
  audio: { codec: 'aac', sampleRate: 48000, channels: 2 },
};

t.test('output size fits 1280x720 (or 720x1280 portrait), even, never upscaled', async (t) => {
  t.same(outputSize(1920, 1080), { width: 1280, height: 720 });
  t.same(outputSize(1080, 1920), { width: 720, height: 1280 });
  t.same(outputSize(641, 361), { width: 642, height: 362 });
  t.same(outputSize(7680, 4320), { width: 1280, height: 720 });
  t.same(outputSize(1440, 1080), { width: 960, height: 720 });
});

t.test('plan: slides get few frames, faces more; lowest rendition first', async (t) => {
  const plan = makePlan(info, [shot(0, 0, 12, 'slide'), shot(1, 12, 20, 'talking_head'), shot(2, 20, 30, 'motion')], { segmentSeconds: 6 });
  t.equal(plan.baseFps, 30);
  t.equal(plan.renditions.length, 2);
  const [low, high] = plan.renditions;
  t.ok(low!.shots[0]!.fps < low!.shots[1]!.fps, 'slide fps below talking head fps');
  for (let i = 0; i < 3; i++) {
    t.ok(low!.shots[i]!.qp >= high!.shots[i]!.qp, 'lowest rendition never gets more bits');
    t.ok(low!.shots[i]!.fps <= high!.shots[i]!.fps);
  }
  t.equal(plan.audio?.mode, 'speech');
  t.equal(plan.audio?.opus.application, 'voip');
  // one keyframe for the 12 s slide, one every two segments in moving shots
  t.same(plan.keyframes, [0, 12, 20]);
  const long = makePlan(info, [shot(0, 0, 30, 'talking_head')], { segmentSeconds: 6 });
  t.same(long.keyframes, [0, 12, 24], 'a long face: one every 12 s, not every 6');
});

t.test('music over a quarter of the lesson switches the audio to music mode', async (t) => {
  t.equal(lessonAudio([shot(0, 0, 10, 'slide', 1, 0), shot(1, 10, 20, 'motion', 0, 1)]), 'music');
  t.equal(lessonAudio([shot(0, 0, 30, 'slide', 1, 0), shot(1, 30, 35, 'motion', 0, 1)]), 'speech');
});

t.test('keyframes: long static shots still get one per minute', async (t) => {
  t.same(keyframeTimes([{ index: 0, start: 0, end: 130, cls: 'slide', audio: 'speech', reason: '' }], 6), [0, 60, 120]);
});

t.test('more bits only for the shots that missed', async (t) => {
  const plan = makePlan(info, [shot(0, 0, 10, 'slide'), shot(1, 10, 30, 'motion')], { segmentSeconds: 6 });
  const more = withMoreBits(plan, 'v0', [1]);
  t.equal(more.renditions[0]!.shots[0]!.qp, plan.renditions[0]!.shots[0]!.qp);
  // motion first gets more frames (judder), and a slightly finer quantiser
  t.equal(more.renditions[0]!.shots[1]!.fps, 10);
  t.equal(more.renditions[0]!.shots[1]!.qp, plan.renditions[0]!.shots[1]!.qp - 1);
  const text = withMoreBits(plan, 'v0', [0]);
  t.equal(text.renditions[0]!.shots[0]!.qp, plan.renditions[0]!.shots[0]!.qp - 3);
  t.equal(text.renditions[0]!.shots[0]!.fps, plan.renditions[0]!.shots[0]!.fps);
  t.same(more.renditions[1], plan.renditions[1]);
});

t.test('frame selection: shot starts always kept, rate follows the shot', async (t) => {
  const plan = makePlan(info, [shot(0, 0, 10, 'slide'), shot(1, 10, 20, 'talking_head'), shot(2, 20, 30, 'slide')], { segmentSeconds: 6 });
  const low = plan.renditions[0]!;
  const sim = simulateSelect(plan, low);
  const fpsSlide = low.shots[0]!.fps; const fpsHead = low.shots[1]!.fps;
  // the first 3 source frames are always kept (B-frame delay stays 2/30 s), and the last
  // frame before every cut so fragments end where the next one starts
  const shot0 = 10 * fpsSlide + 2 + 1; const shot1 = 10 * fpsHead + 1; const shot2 = 10 * fpsSlide + 1;
  t.equal(sim.firstFrame[0], 0);
  t.equal(sim.firstFrame[1], shot0);
  t.equal(sim.firstFrame[2], shot0 + shot1);
  t.equal(sim.total, shot0 + shot1 + shot2);
  t.match(selectExpr(plan, low), /^isnan\(prev_selected_t\)\+lt\(n,3\)\+if\(lt\(t,9\.9999\),between/);
  // every shot gets its quantiser over exactly its own output frames
  const a = shot0; const b = shot0 + shot1;
  t.equal(zones(plan, low), `0,${a - 1},q=31/${a},${b - 1},q=37/${b},${sim.total - 1},q=31`);
});

t.test('frame rates step up through even divisors of the source rate', async (t) => {
  const { nextRate } = await import('../../../daemon/optimize/plan.js');
  t.same([nextRate(6, 30), nextRate(10, 30), nextRate(15, 30), nextRate(30, 30), nextRate(12, 25)], [10, 15, 30, 30, 25]);
});

t.test('the last segment of a variable-frame-rate playlist lasts until the end of the lesson', async (t) => {
  const { fixLastSegment } = await import('../../../daemon/optimize/package.js');
  const pl = '#EXTM3U\n#EXT-X-TARGETDURATION:18\n#EXTINF:12.000000,\ns0.m4s\n#EXTINF:17.600000,\ns1.m4s\n#EXTINF:0.600000,\ns2.m4s\n#EXT-X-ENDLIST\n';
  const fixed = fixLastSegment(pl, 50);
  t.match(fixed, /#EXTINF:20\.400000,\ns2\.m4s/);
  t.match(fixed, /#EXT-X-TARGETDURATION:20/);
  t.equal(fixLastSegment(fixed, 50), fixed, 'idempotent');
});

t.test('a near miss on motion gets a finer quantiser, not more frames', async (t) => {
  const plan = makePlan(info, [shot(0, 0, 10, 'slide'), shot(1, 10, 30, 'motion')], { segmentSeconds: 6 });
  const near = withMoreBits(plan, 'v0', [1], 3, [1]);
  t.equal(near.renditions[0]!.shots[1]!.fps, plan.renditions[0]!.shots[1]!.fps);
  t.equal(near.renditions[0]!.shots[1]!.qp, plan.renditions[0]!.shots[1]!.qp - 3);
});

t.test('a shot the model pushed too far goes back to the rules; the others step as before', async (t) => {
  const { backToRules } = await import('../../../daemon/optimize/optimizer.js');
  const rules = makePlan(info, [shot(0, 0, 12, 'slide'), shot(1, 12, 20, 'motion'), shot(2, 20, 30, 'talking_head')], { segmentSeconds: 6 });
  const r0 = rules.renditions[0]!;
  // the model: slide +9, motion +9, head left alone
  const assisted = { ...rules, renditions: [{ ...r0, shots: r0.shots.map((s, i) => (i < 2 ? { ...s, qp: s.qp + 9 } : s)) }, rules.renditions[1]!] };
  const back = backToRules(assisted, rules, 'v0', [1, 2]);
  t.same(back.shots, [1], 'only the raised shot that missed');
  t.equal(back.plan.renditions[0]!.shots[1]!.qp, r0.shots[1]!.qp, 'motion back to the rules');
  t.equal(back.plan.renditions[0]!.shots[0]!.qp, r0.shots[0]!.qp + 9, 'the slide kept its model quantiser: it met its floor');
  t.equal(back.plan.renditions[0]!.shots[2]!.qp, r0.shots[2]!.qp, 'the head was at the rules already: withMoreBits handles it');
  t.same(back.plan.renditions[1], rules.renditions[1], 'other renditions untouched');
});

t.test('the speech model decides the audio mode when it ran', async (t) => {
  // a real radio voice: its level swings less than espeak's, so the heuristic heard 40% music
  const voice = [shot(0, 0, 30, 'slide', 0.6, 0.4)];
  t.equal(lessonAudio(voice), 'music', 'the heuristic alone');
  t.equal(lessonAudio(voice, 28.1), 'speech', 'Silero VAD heard 28.1 s of speech in 30 s');
  t.equal(lessonAudio(voice, 6), 'music', 'speech in a fifth of the sound: music with a few words');
  // silence does not count against speech: 20 s of sound, 12 s of it speech
  const quiet = [{ ...shot(0, 0, 40, 'slide', 0.2, 0.3), audio: { speech: 0.2, music: 0.3, silence: 0.5, kind: 'music' as const } }];
  t.equal(lessonAudio(quiet, 12), 'speech');
  t.equal(lessonAudio(quiet, 8), 'music');
});

t.test('a re-classed shot takes its new class\'s settings in every rendition', async (t) => {
  const plan = makePlan(info, [shot(0, 0, 12, 'slide'), shot(1, 12, 30, 'talking_head')], { segmentSeconds: 6 });
  const re = reclassShot(plan, 1, 'motion', 'no face');
  t.equal(re.shots[1]!.cls, 'motion');
  t.match(re.shots[1]!.reason, /no face/);
  t.same(re.renditions.map((r) => r.shots[1]), [CLASS_SETTINGS.motion[0], CLASS_SETTINGS.motion[1]]);
  t.same(re.renditions.map((r) => r.shots[0]), plan.renditions.map((r) => r.shots[0]), 'the other shots untouched');
});
