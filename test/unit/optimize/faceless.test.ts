import t from 'tap';
import { assistPlan } from '../../../daemon/models/assist.js';
import type { FaceFrame } from '../../../daemon/models/face.js';
import { createLogger } from '../../../daemon/log.js';
import { CLASS_SETTINGS, makePlan } from '../../../daemon/optimize/plan.js';
import type { MediaInfo } from '../../../daemon/optimize/probe.js';
import type { Shot, ShotClass } from '../../../daemon/optimize/shots.js';

// Pedestrians past a fixed camera move in one place like a presenter does, so the rules call
// them a talking head; the face model, which looks at those frames anyway, settles it.
function shot(index: number, start: number, end: number, cls: ShotClass): Shot {
  return {
    index, start, end, cls,
    video: { diff: 2.3, diffP90: 3.4, ti: 12, si: 120, edges: 0.25, edgeGrowth: 0 },
    audio: { speech: 0, music: 0, silence: 1, kind: 'silence' },
  };
}

const info: MediaInfo = {
  path: 'in.mp4', duration: 20, sizeBytes: 1,
  video: { codec: 'h264', width: 768, height: 576, displayWidth: 768, displayHeight: 576, rotation: 0, fps: 10, variableFrameRate: false },
};

const face = { xmin: 0.4, ymin: 0.2, xmax: 0.6, ymax: 0.45, score: 0.9, keypoints: [] as Array<[number, number]> };
/** the face model's frames at 2 per second; `withFace(t)` says where it saw one */
function frames(withFace: (t: number) => boolean): FaceFrame[] {
  return Array.from({ length: 40 }, (_, i) => ({ t: i / 2, faces: withFace(i / 2) ? [face] : [] }));
}

async function assisted(faces: FaceFrame[]) {
  const shots = [shot(0, 0, 10, 'talking_head'), shot(1, 10, 20, 'talking_head')];
  const plan = makePlan(info, shots, { segmentSeconds: 6 });
  return assistPlan({
    info, analysis: {}, shots, plan, faces: { frames: faces, ms: 0 },
    models: { vad: false, face: true, rate: false },
    floors: { ocrRatio: 0.97, ssimTalkingHead: 0.95, ssimMotion: 0.75, stoi: 0.96 },
    log: createLogger('silent'),
  });
}

t.test('a talking head where the face model saw no face is coded as motion', async (t) => {
  const r = await assisted(frames((s) => s < 10));
  t.same(r.plan.shots.map((s) => s.cls), ['talking_head', 'motion']);
  t.ok(r.plan.shots[0]!.roi, 'the presenter keeps the region of interest');
  t.same(r.plan.renditions[0]!.shots[1], CLASS_SETTINGS.motion[0]);
  t.same(r.plan.renditions[1]!.shots[1], { ...CLASS_SETTINGS.motion[1], fps: 10 }, 'never more frames than the source has');
  t.match(r.plan.shots[1]!.reason, /no face/);
  t.same((r.notes.face as { reclassed: number[] }).reclassed, [1]);
});

t.test('a teacher who looks away now and then stays a talking head', async (t) => {
  // the teacher looks away now and then: faces in 3 of 4 frames
  const r = await assisted(frames((s) => Math.round(s * 2) % 4 !== 0));
  t.same(r.plan.shots.map((s) => s.cls), ['talking_head', 'talking_head']);
});

t.test('a shaky, noisy phone on a face is promoted to talking head; a film full of faces is not', async (t) => {
  const run = async (video: Shot['video']) => {
    const shots: Shot[] = [{ ...shot(0, 0, 20, 'motion'), video }];
    const plan = makePlan(info, shots, { segmentSeconds: 6 });
    return assistPlan({
      info, analysis: {}, shots, plan, faces: { frames: frames(() => true), ms: 0 },
      models: { vad: false, face: true, rate: false },
      floors: { ocrRatio: 0.97, ssimTalkingHead: 0.95, ssimMotion: 0.75, stoi: 0.96 },
      log: createLogger('silent'),
    });
  };
  // measured: the noisy handheld face of test/integration/floors.test.ts; a Megamind scene
  const handheld = await run({ diff: 7.04, diffP90: 9.04, ti: 12.17, si: 159, edges: 0.44, edgeGrowth: 0 });
  t.same(handheld.plan.shots.map((s) => s.cls), ['talking_head']);
  t.same((handheld.notes.face as { promoted: number[] }).promoted, [0]);
  t.ok(handheld.plan.shots[0]!.roi, 'and gets the teacher region');
  const film = await run({ diff: 6.23, diffP90: 9.26, ti: 17.44, si: 94, edges: 0.17, edgeGrowth: 0.01 });
  t.same(film.plan.shots.map((s) => s.cls), ['motion']);
});
