import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { decodePcm } from '../../../daemon/quality/audio.js';
import { STOI_FS, alignOffset, arrayReader, speechWindows, stoiOfLesson, stoiOverIntervals } from '../../../daemon/quality/stoi.js';

// The lesson-length STOI (windows, lag measured once on an early stretch) against the
// whole-signal computation it replaces, on espeak-ng speech with deterministic impairments.

const FS = STOI_FS;

function noise(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = (): number => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return (s + 1) / 4294967297; };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

/**
 * Four sentences at different levels (a teacher walking away from the microphone) with a
 * second of faint room tone between them, and the speech intervals.
 */
async function lesson(dir: string): Promise<{ clean: Float32Array; intervals: Array<{ start: number; end: number }> }> {
  const wav = join(dir, 'speech.wav');
  const r = spawnSync('espeak-ng', ['-v', 'es-419', '-s', '160', '-w', wav,
    'Hoy vamos a estudiar la fotosíntesis. Las plantas usan la luz del sol para producir azúcar.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`espeak-ng failed: ${r.stderr}`);
  const one = await decodePcm(wav, { sampleRate: FS });
  const gap = FS;
  const gains = [1, 0.5, 0.15, 0.8];
  const clean = new Float32Array(gains.length * (one.length + gap) + gap);
  const room = noise(clean.length, 7);
  for (let i = 0; i < clean.length; i++) clean[i] = 0.0005 * room[i]!;
  const intervals: Array<{ start: number; end: number }> = [];
  gains.forEach((g, k) => {
    const at = gap + k * (one.length + gap);
    for (let i = 0; i < one.length; i++) clean[at + i]! += g * one[i]!;
    intervals.push({ start: at / FS, end: (at + one.length) / FS });
  });
  return { clean, intervals };
}

/** degraded copy: `late` samples behind, with white noise at `snr` dB under the loudest sentence */
function degrade(clean: Float32Array, late: number, level: number): Float32Array {
  const n = noise(clean.length + late, 99);
  const out = new Float32Array(clean.length + late);
  for (let i = 0; i < out.length; i++) out[i] = (i >= late ? clean[i - late]! : 0) + level * n[i]!;
  return out;
}

t.test('windows of a lesson give the whole-signal STOI', async (t) => {
  const { clean, intervals } = await lesson(t.testdir());
  for (const level of [0.002, 0.02, 0.08]) {
    const deg = degrade(clean, 345, level);
    const lagWhole = alignOffset(clean, deg, FS, 0.5);
    const whole = stoiOverIntervals(clean, deg, FS, intervals, lagWhole);
    const one = stoiOfLesson(arrayReader(clean), arrayReader(deg), FS, { intervals, maxLagSec: 0.5 });
    t.equal(one.windows, 1, 'a short clip is one window');
    t.equal(one.lag, lagWhole, `the early stretch finds the whole signal's lag (${one.lag})`);
    t.ok(Math.abs(one.value - whole) < 1e-9, `one window is the whole computation (${one.value} vs ${whole})`);
    // 2 s windows: a dozen of them, sentences split across windows
    const win = stoiOfLesson(arrayReader(clean), arrayReader(deg), FS, { intervals, maxLagSec: 0.5, windowSec: 2, alignSec: 6 });
    t.ok(win.windows >= 10, `${win.windows} windows`);
    t.equal(win.lag, 345);
    // streamed frame by frame, the windows' edges change nothing (the brief allowed 0.005)
    t.ok(Math.abs(win.value - whole) < 1e-9, `noise ${level}: windowed ${win.value} vs whole ${whole}`);
  }
});

t.test('speechWindows splits intervals at the window size and keeps every sample once', async (t) => {
  const w = speechWindows([{ start: 0, end: 1 }, { start: 2, end: 2.5 }, { start: 9, end: 20 }], 10, 120, 6);
  t.same(w, [[[0, 6]], [[6, 10], [20, 22]], [[22, 25], [90, 93]], [[93, 99]], [[99, 105]], [[105, 111]], [[111, 117]], [[117, 120]]]);
  t.same(speechWindows([], 10, 100, 6), []);
});

t.test('too little speech is an error, as for the whole signal', async (t) => {
  const { clean } = await lesson(t.testdir());
  t.throws(() => stoiOfLesson(arrayReader(clean), arrayReader(clean), FS, { intervals: [{ start: 1.1, end: 1.2 }], maxLagSec: 0.5 }), RangeError);
  t.throws(() => stoiOfLesson(arrayReader(clean), arrayReader(clean), FS, { intervals: [], maxLagSec: 0.5 }), RangeError);
});
