/**
 * `npm run bench:model-costs`: what the models' own costs were and are, each measured both ways
 * in the same run on generated media (espeak-ng speech, the astronaut fixture as a talking
 * head):
 *  - VAD over 3 min of speech: one lane, one message to the ONNX worker per 32 ms frame (as the
 *    box did) vs the lanes speechProbabilities runs in one batch, looped inside the worker;
 *  - faces over a 2-min talking-head recording: the analysis decode plus a separate decode for
 *    the face model (as the box did) vs the analysis decode feeding the face model (FrameTap);
 *  - SSIM of a shot with a face region: two passes, each decoding the same frames (as the box
 *    did: frame, then region; timed as the frame pass twice) vs one pass giving both.
 * Prints numbers only; nothing is asserted (times depend on the machine and its load).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { loadNative } from '../../daemon/analysis/native.js';
import { faceTap } from '../../daemon/models/face.js';
import { loadManifest, openModel } from '../../daemon/models/manifest.js';
import { runRecurrent, type InferenceSession, type Tensor } from '../../daemon/models/runtime.js';
import { VAD_CONTEXT, VAD_HOP, loadVad } from '../../daemon/models/vad.js';
import { analyseVideo } from '../../daemon/optimize/analyse.js';
import { probe } from '../../daemon/optimize/probe.js';
import { ssimWindow } from '../../daemon/quality/ssim.js';
import { faceTrack } from '../helpers/face-track.js';

const ASTRONAUT = fileURLToPath(new URL('../fixtures/astronaut-256.png', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'yachay-model-costs-'));
const ffmpeg = (args: string[]): Buffer => execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...args], { maxBuffer: 256 << 20 });
const seconds = async (fn: () => Promise<unknown>): Promise<number> => {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
};
const row = (what: string, before: number, after: number): void => {
  console.log(`| ${what} | ${before.toFixed(2)} s | ${after.toFixed(2)} s | ${(before / after).toFixed(1)}× |`);
};

try {
  console.log('| measure | before | now | faster |');
  console.log('|---|---|---|---|');

  // --- VAD -----------------------------------------------------------------------------------
  const wav = join(dir, 'say.wav');
  execFileSync('espeak-ng', ['-v', 'es', '-w', wav, 'La fotosíntesis convierte la luz del sol en azúcar para la planta, y el agua sube por la raíz.']);
  const raw = ffmpeg(['-i', wav, '-af', 'apad=pad_dur=1.5', '-ac', '1', '-ar', '16000', '-f', 'f32le', 'pipe:1']);
  const sentence = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  const pcm = new Float32Array(180 * 16000);
  for (let at = 0; at < pcm.length; at += sentence.length) pcm.set(sentence.subarray(0, pcm.length - at), at);
  const vad = await loadVad();
  try {
    const session = vad.session;
    // the same session without its worker loop: one run() message per frame
    const perFrame: InferenceSession = { backend: session.backend, inputs: session.inputs, outputs: session.outputs, run: session.run.bind(session), dispose: async () => {} };
    const frames = Math.ceil(pcm.length / VAD_HOP);
    const width = VAD_CONTEXT + VAD_HOP;
    const windows = new Float32Array(frames * width);
    for (let f = 0; f < frames; f++) {
      const from = f * VAD_HOP - VAD_CONTEXT;
      const a = Math.max(0, from);
      windows.set(pcm.subarray(a, Math.min(pcm.length, f * VAD_HOP + VAD_HOP)), f * width + (a - from));
    }
    const state: Tensor = { dtype: 'float32', shape: [2, 1, 128], data: new Float32Array(256) };
    const sr: Tensor = { dtype: 'int64', shape: [], data: BigInt64Array.of(16000n) };
    await vad.probabilities(pcm.subarray(0, 16000 * 10)); // warm-up
    const oneLane = await seconds(() => runRecurrent(perFrame, { input: 'input', windows, shape: [1, width], constants: { sr }, stateIn: 'state', stateOut: 'stateN', state, output: 'output' }));
    const lanes = await seconds(() => vad.probabilities(pcm));
    row('VAD, 3 min of speech (one lane, a message per frame → lanes looped in the worker)', oneLane, lanes);
  } finally {
    await vad.dispose();
  }

  // --- faces ---------------------------------------------------------------------------------
  const clip = join(dir, 'head.mp4');
  ffmpeg(['-f', 'lavfi', '-i', 'color=c=0x707880:s=1280x720:r=30:d=120', '-loop', '1', '-framerate', '30', '-t', '120', '-i', ASTRONAUT,
    '-f', 'lavfi', '-i', 'sine=f=300:d=120', '-filter_complex',
    "[0:v]noise=alls=4:allf=t[bg];[1:v]format=yuv420p,scale=400:400[face];[bg][face]overlay=x='400+30*sin(t)':y='100+10*sin(2*t)':eval=frame,format=yuv420p",
    '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '20', '-c:a', 'aac', '-shortest', clip]);
  const info = await probe(clip);
  const kernels = loadNative();
  const face = await openModel(loadManifest(), 'face');
  try {
    await faceTrack(face, clip, { fps: 2, info }); // warm-up: page cache, model
    const separate = await seconds(async () => {
      await analyseVideo(info, kernels, 5);
      await faceTrack(face, clip, { fps: 2, info });
    });
    const tapped = await seconds(async () => {
      const faces = faceTap(face, info, { fps: 2 });
      await analyseVideo(info, kernels, 5, { tap: faces.tap });
      await faces.done();
    });
    row('analysis + faces, 2-min talking head (second decode → analysis decode tapped)', separate, tapped);
  } finally {
    await face.dispose();
  }

  // --- SSIM with a face region ---------------------------------------------------------------
  const low = join(dir, 'low.mp4');
  ffmpeg(['-i', clip, '-t', '20', '-vf', 'scale=640:360', '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '30', low]);
  const win = { start: 4, duration: 12, width: 640, height: 360, fps: 30 };
  const crop = { x: 200, y: 40, w: 240, h: 280 };
  await ssimWindow(clip, low, win); // warm-up
  const twoPasses = await seconds(async () => {
    await ssimWindow(clip, low, win);
    await ssimWindow(clip, low, win);
  });
  const onePass = await seconds(() => ssimWindow(clip, low, { ...win, crop }));
  row('SSIM of a 12 s shot with a face region (two decoding passes → one)', twoPasses, onePass);
  console.log(`\n${process.arch}, ${(await import('node:os')).cpus().length} CPUs, ${new Date().toISOString().slice(0, 10)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
