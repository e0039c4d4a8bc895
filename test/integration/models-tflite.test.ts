import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { isYachayError } from '../../daemon/errors.js';
import { loadTflite, type TfliteSession } from '../../daemon/models/backends/tflite.js';
import { detectFaces, faceTap, FACE_SIZE, shotRegion } from '../../daemon/models/face.js';
import { faceTrack } from '../helpers/face-track.js';
import { analyseVideo } from '../../daemon/optimize/analyse.js';
import { probe } from '../../daemon/optimize/probe.js';
import { loadNative } from '../../daemon/analysis/native.js';
import { findModel, loadManifest, verifiedFile } from '../../daemon/models/manifest.js';
import { loadModel, type Tensor } from '../../daemon/models/runtime.js';

// The real TFLite addon runs the real BlazeFace model on a real photograph (public-domain
// astronaut portrait: face in the upper middle, roughly x 0.31-0.57, y 0.06-0.37).

const ASTRONAUT = new URL('../fixtures/astronaut-256.png', import.meta.url).pathname;
const entry = findModel(loadManifest(), 'face');
const modelFile = verifiedFile(entry);

/** One frame of anything ffmpeg can read or generate, as 128×128 rgb24. */
function rgb128(input: string[], filter = `scale=${FACE_SIZE}:${FACE_SIZE}`): Uint8Array {
  const out = execFileSync('ffmpeg', ['-nostdin', '-v', 'error', ...input, '-frames:v', '1', '-vf', filter,
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { maxBuffer: 1 << 20 });
  return new Uint8Array(out);
}

async function rejectsWith(t: Test, p: Promise<unknown>, code: Parameters<typeof isYachayError>[1], msg: RegExp, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: resolved`);
  } catch (e) {
    t.ok(isYachayError(e, code) && msg.test((e as Error).message), `${what}: ${(e as Error).message}`);
  }
}

let session: TfliteSession;
t.before(async () => {
  session = (await loadModel('tflite', modelFile)) as TfliteSession;
});
t.teardown(() => session.dispose());

t.test('metadata matches the manifest, XNNPACK is on', async (t) => {
  t.equal(session.backend, 'tflite');
  t.same(session.inputs, entry.inputs, 'inputs: names, dtype, shape');
  t.same(session.outputs, entry.outputs, 'outputs: names, dtype, shape');
  t.equal(session.accelerator, 'xnnpack', session.acceleratorNote);
});

t.test('the astronaut photo has one face, in the right place', async (t) => {
  const faces = await detectFaces(session, rgb128(['-i', ASTRONAUT]), FACE_SIZE, FACE_SIZE);
  t.equal(faces.length, 1, 'one face after NMS');
  const f = faces[0]!;
  t.ok(f.score > 0.8, `score ${f.score.toFixed(3)}`);
  const cx = (f.xmin + f.xmax) / 2;
  const cy = (f.ymin + f.ymax) / 2;
  t.ok(cx > 0.35 && cx < 0.55 && cy > 0.1 && cy < 0.35, `centre (${cx.toFixed(3)}, ${cy.toFixed(3)}) in the upper middle`);
  t.ok(f.xmax - f.xmin > 0.12 && f.xmax - f.xmin < 0.4, `width ${(f.xmax - f.xmin).toFixed(3)} is face-sized`);
  // eyes (keypoints 0, 1) above the mouth (3), all inside the box
  const [re, le, , mouth] = f.keypoints;
  t.ok(re![1] < mouth![1] && le![1] < mouth![1], 'eyes above the mouth');
  // ear tragions (4, 5) may fall just outside the box; eyes, nose and mouth may not
  t.ok(f.keypoints.slice(0, 4).every(([x, y]) => x >= f.xmin && x <= f.xmax && y >= f.ymin && y <= f.ymax), 'eyes, nose, mouth inside the box');
});

t.test('no face on a flat grey frame or a test pattern', async (t) => {
  const grey = new Uint8Array(FACE_SIZE * FACE_SIZE * 3).fill(128);
  t.same(await detectFaces(session, grey, FACE_SIZE, FACE_SIZE), [], 'grey');
  const pattern = rgb128(['-f', 'lavfi', '-i', `testsrc=size=${FACE_SIZE}x${FACE_SIZE}:rate=1`], 'null');
  t.same(await detectFaces(session, pattern, FACE_SIZE, FACE_SIZE), [], 'testsrc');
});

/**
 * 3 s at 10 fps: zoom 1.25 while panning left to right, framed 4:3 with side bars so the
 * letterbox mapping is exercised. The face slides from right of centre to left.
 */
function panClip(dir: string): string {
  const clip = join(dir, 'pan.mp4');
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-loop', '1', '-framerate', '10', '-t', '3', '-i', ASTRONAUT,
    '-vf', "zoompan=z=1.25:x='(iw-iw/zoom)*on/29':y='(ih-ih/zoom)*0.2':d=1:s=240x240:fps=10,pad=320:240:40:0",
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', clip]);
  return clip;
}

t.test('a panned, zoomed clip gives a consistent track and a region around the face', async (t) => {
  const dir = t.testdir();
  const clip = panClip(dir);
  const track = await faceTrack(session, clip, { fps: 5 });
  t.ok(track.length >= 14 && track.length <= 16, `${track.length} frames`);
  const found = track.filter((f) => f.faces.length > 0);
  t.equal(found.length, track.length, 'a face in every frame');
  const cx = found.map((f) => (f.faces[0]!.xmin + f.faces[0]!.xmax) / 2);
  const cy = found.map((f) => (f.faces[0]!.ymin + f.faces[0]!.ymax) / 2);
  t.comment(`face centre x: ${cx.map((v) => v.toFixed(3)).join(' ')}`);
  t.ok(cx[0]! - cx.at(-1)! > 0.1, `moves left: ${cx[0]!.toFixed(3)} → ${cx.at(-1)!.toFixed(3)}`);
  t.ok(cx.every((v, i) => i === 0 || v <= cx[i - 1]! + 0.02), 'never jumps back');
  t.ok(Math.max(...cy) - Math.min(...cy) < 0.06, 'vertical position steady');
  t.ok(track.every((f, i) => i === 0 || f.t > track[i - 1]!.t), 'timestamps increase');

  const r = shotRegion(track);
  t.ok(r, 'talking-head shot gets a region');
  const mid = Math.floor(found.length / 2);
  const face = found[mid]!.faces[0]!;
  t.ok(r!.x <= face.xmin && r!.x + r!.w >= face.xmax && r!.y <= face.ymin && r!.y + r!.h >= face.ymax, 'region contains the face');
  t.ok(r!.y + r!.h > face.ymax + (face.ymax - face.ymin), 'and reaches below it');
  t.ok(r!.x >= 0 && r!.y >= 0 && r!.x + r!.w <= 1 && r!.y + r!.h <= 1, 'inside the frame');
});

// The optimizer takes the face frames from its analysis decode (faceTap) instead of decoding
// the talking-head shots again (faceTrack in test/helpers): both must see the same frames at
// the same times.
t.test('faces from the analysis decode are those of a separate decode', async (t) => {
  const dir = t.testdir();
  const clip = panClip(dir);
  const info = await probe(clip);
  const faces = faceTap(session, info, { fps: 2 });
  const video = await analyseVideo(info, loadNative(), 5, { tap: faces.tap });
  const tapped = await faces.done();
  const separate = await faceTrack(session, clip, { fps: 2, info });
  t.equal(video.diff.length, 15, 'the analysis itself still gets its 5 fps frames');
  t.same(tapped.map((f) => f.t), separate.map((f) => f.t), `the same ${tapped.length} frame times`);
  const close = tapped.every((f, i) => {
    const a = f.faces[0]; const b = separate[i]!.faces[0];
    return a && b && Math.abs(a.xmin - b.xmin) < 0.01 && Math.abs(a.ymax - b.ymax) < 0.01;
  });
  t.ok(close, 'the same face in each frame');
  t.ok(faces.modelMs() > 0, `model time counted (${faces.modelMs().toFixed(1)} ms)`);
});

t.test('feeds are checked; dispose is final', async (t) => {
  const s = await loadTflite(modelFile, {});
  const ok: Tensor = { dtype: 'float32', shape: [1, 128, 128, 3], data: new Float32Array(128 * 128 * 3) };
  await rejectsWith(t, s.run({ input: { ...ok, shape: [1, 64, 64, 3], data: new Float32Array(64 * 64 * 3) } }),
    'YCH_ERR_MODEL_RUN', /input input: expected float32 \[1,128,128,3\], got shape \[1,64,64,3\]/, 'wrong shape');
  await rejectsWith(t, s.run({ input: { dtype: 'int32', shape: ok.shape, data: new Int32Array(128 * 128 * 3) } }),
    'YCH_ERR_MODEL_RUN', /expected float32.*got int32/, 'wrong dtype');
  await rejectsWith(t, s.run({ image: ok }), 'YCH_ERR_MODEL_RUN', /unknown input image/, 'wrong name');
  await rejectsWith(t, s.run({}), 'YCH_ERR_MODEL_RUN', /input input missing/, 'missing feed');
  const [a, b] = await Promise.all([s.run({ input: ok }), s.run({ input: ok })]);
  t.same(a!.classificators!.data, b!.classificators!.data, 'concurrent runs queue and agree');
  const pending = s.run({ input: ok });
  await s.dispose();
  t.ok((await pending).regressors, 'a run queued before dispose still completes');
  await rejectsWith(t, s.run({ input: ok }), 'YCH_ERR_MODEL_RUN', /disposed/, 'run after dispose');
  await s.dispose();
  t.pass('dispose twice is harmless');
});

t.test('a junk model file is YCH_ERR_MODEL_CORRUPT, a missing one YCH_ERR_MODEL_MISSING', async (t) => {
  const dir = t.testdir();
  const junk = join(dir, 'junk.tflite');
  writeFileSync(junk, Buffer.from('this is not a flatbuffer, just junk bytes\n'.repeat(100)));
  await rejectsWith(t, loadTflite(junk), 'YCH_ERR_MODEL_CORRUPT', /junk\.tflite cannot be parsed/, 'junk');
  await rejectsWith(t, loadTflite(join(dir, 'absent.tflite')), 'YCH_ERR_MODEL_MISSING', /absent\.tflite/, 'missing');
});

t.test('latency with and without XNNPACK (printed, not asserted)', async (t) => {
  const input: Tensor = { dtype: 'float32', shape: [1, 128, 128, 3], data: new Float32Array(rgb128(['-i', ASTRONAUT]).map((v) => v / 127.5 - 1)) };
  const scores: Record<string, number> = {};
  for (const accelerator of ['none', 'xnnpack'] as const) {
    const s = await loadTflite(modelFile, { accelerator });
    t.equal(s.accelerator, accelerator);
    for (let i = 0; i < 5; i++) await s.run({ input }); // warm-up: first runs pack weights
    const times: number[] = [];
    let out: Record<string, Tensor> = {};
    for (let i = 0; i < 40; i++) {
      const t0 = performance.now();
      out = await s.run({ input });
      times.push(performance.now() - t0);
    }
    await s.dispose();
    times.sort((a, b) => a - b);
    scores[accelerator] = Math.max(...(out.classificators!.data as Float32Array));
    t.comment(`face model, ${accelerator}: median ${times[20]!.toFixed(2)} ms, p90 ${times[36]!.toFixed(2)} ms per run (incl. async round trip)`);
  }
  t.ok(Math.abs(scores.none! - scores.xnnpack!) < 1e-3, `same top logit: ${scores.none!.toFixed(4)} vs ${scores.xnnpack!.toFixed(4)}`);
});

// A held slide or a still board does not need the model at every sample: a frame that hardly
// differs from the last one it saw keeps that answer (bench:long: the face model was most of
// analysis + models on the hour). A moving face is still looked at in every frame.
t.test('still frames reuse the last answer; moving ones are each looked at; a long still is rechecked', async (t) => {
  const dir = t.testdir();
  const still = join(dir, 'still.mp4');
  // a still portrait for 30 s (the astronaut photo, looped), at the tap's 2 fps: 60 frames
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-loop', '1', '-i', ASTRONAUT, '-t', '30', '-r', '10',
    '-vf', 'scale=320:320,format=yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', still]);
  const info = await probe(still);
  const faces = faceTap(session, info, { fps: 2 });
  await analyseVideo(info, loadNative(), 5, { tap: faces.tap });
  const frames = await faces.done();
  const { inferred, reused } = faces.counts();
  t.equal(frames.length, inferred + reused, `every frame has an answer (${frames.length})`);
  t.ok(frames.length >= 58, `${frames.length} frames`);
  t.ok(frames.every((f) => f.faces.length === 1), 'the face is in every frame, looked at or kept');
  t.ok(inferred >= 3 && inferred <= 5, `the model ran ${inferred} times: once, then every ${10} s`);

  const moving = panClip(dir);
  const info2 = await probe(moving);
  const faces2 = faceTap(session, info2, { fps: 2 });
  await analyseVideo(info2, loadNative(), 5, { tap: faces2.tap });
  const frames2 = await faces2.done();
  t.equal(faces2.counts().reused, 0, `a panned, zoomed face is looked at in each of its ${frames2.length} frames`);
});
