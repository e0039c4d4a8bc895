import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { decodePcm } from '../../../daemon/quality/audio.js';
import { alignOffset, resample, stoi, stoiOverIntervals } from '../../../daemon/quality/stoi.js';

// STOI and its helpers on espeak-ng speech with controlled, deterministic impairments.

const FS = 16000;

/** Deterministic white noise (xorshift + Box-Muller), so a failure reproduces exactly. */
function noise(n: number, seed = 12345): Float32Array {
  let s = seed >>> 0;
  const u = (): number => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return (s + 1) / 4294967297; };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

function power(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return s / x.length;
}

/** clean + white noise scaled to the given SNR (dB, over the whole signal) */
function withNoise(x: Float32Array, snrDb: number): Float32Array {
  const n = noise(x.length);
  const g = Math.sqrt(power(x) / (power(n) * 10 ** (snrDb / 10)));
  return x.map((v, i) => v + g * n[i]!);
}

async function speech(dir: string): Promise<Float32Array> {
  const wav = join(dir, 'speech.wav');
  const r = spawnSync('espeak-ng', ['-v', 'en-us', '-s', '165', '-w', wav,
    'The lesson starts with fractions. Half of eight is four, and a quarter of eight is two. '
    + 'Now write the example on the board and read it aloud with me.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`espeak-ng failed: ${r.stderr}`);
  return decodePcm(wav, { sampleRate: FS });
}

t.test('STOI on generated speech', async (t) => {
  const clean = await speech(t.testdir());
  t.ok(clean.length > 4 * FS, `speech is ${(clean.length / FS).toFixed(1)} s`);

  const same = stoi(clean, clean, FS);
  t.ok(same > 0.99, `stoi(clean, clean) = ${same}`);
  const quiet = stoi(clean, clean.map((v) => v * 0.3), FS);
  t.ok(quiet > 0.99, `a gain change is not a loss of intelligibility (${quiet})`);

  const snr20 = stoi(clean, withNoise(clean, 20), FS);
  const snr0 = stoi(clean, withNoise(clean, 0), FS);
  t.ok(snr20 > 0.9, `+20 dB SNR: ${snr20}`);
  t.ok(snr0 < snr20 - 0.15, `0 dB SNR (${snr0}) clearly below +20 dB (${snr20})`);

  // same score whether we resample or the caller hands in 10 kHz
  const at10k = stoi(resample(clean, FS, 10000), resample(withNoise(clean, 0), FS, 10000), 10000);
  t.ok(Math.abs(at10k - snr0) < 1e-6, `10 kHz input gives the same score (${at10k} vs ${snr0})`);
});

t.test('alignOffset finds a known shift, both ways', async (t) => {
  const clean = await speech(t.testdir());
  const late = new Float32Array(clean.length + 1234);
  late.set(clean, 1234); // degraded starts 1234 samples late
  t.equal(alignOffset(clean, late, FS, 0.5), 1234);
  t.equal(alignOffset(clean, clean.subarray(1234), FS, 0.5), -1234);
  t.equal(alignOffset(clean, withNoise(late, 10), FS, 0.5), 1234, 'still exact with noise');
  t.equal(alignOffset(clean, clean, FS, 0.5), 0);

  // applying the lag restores the score
  const unshifted = stoiOverIntervals(clean, late, FS, [{ start: 0, end: clean.length / FS }], 1234);
  t.ok(unshifted > 0.99, `with the lag: ${unshifted}`);
  const shifted = stoi(clean, late, FS);
  t.ok(shifted < unshifted - 0.05, `without it: ${shifted}`);
});

t.test('stoiOverIntervals concatenates the intervals', async (t) => {
  const clean = await speech(t.testdir());
  const noisy = withNoise(clean, 5);
  const iv = [{ start: 0.2, end: 1.9 }, { start: 2.5, end: 4.4 }];
  const cut = (x: Float32Array): Float32Array => {
    const a = x.subarray(Math.round(0.2 * FS), Math.round(1.9 * FS));
    const b = x.subarray(Math.round(2.5 * FS), Math.round(4.4 * FS));
    const out = new Float32Array(a.length + b.length); out.set(a); out.set(b, a.length);
    return out;
  };
  t.equal(stoiOverIntervals(clean, noisy, FS, iv), stoi(cut(clean), cut(noisy), FS));
  t.throws(() => stoiOverIntervals(clean, noisy, FS, [{ start: 1, end: 1.2 }]), RangeError,
    'too little speech is an error, not a number');
});

t.test('resample keeps a tone and the timing', async (t) => {
  const from = 48000;
  const x = new Float32Array(from); // 1 s of 1 kHz
  for (let i = 0; i < x.length; i++) x[i] = Math.sin((2 * Math.PI * 1000 * i) / from);
  const y = resample(x, from, 10000);
  t.equal(y.length, 10000);
  let err = 0;
  for (let i = 200; i < 9800; i++) err = Math.max(err, Math.abs(y[i]! - Math.sin((2 * Math.PI * 1000 * i) / 10000)));
  t.ok(err < 1e-2, `max error ${err}`);
  // a tone above the new Nyquist is removed, not folded back
  const hi = new Float32Array(from);
  for (let i = 0; i < hi.length; i++) hi[i] = Math.sin((2 * Math.PI * 7000 * i) / from);
  t.ok(power(resample(hi, from, 10000).subarray(200, 9800)) < 1e-5, 'alias rejected');
  // odd ratio (CD rate) and upsampling
  t.equal(resample(new Float32Array(44100), 44100, 10000).length, 10000);
  t.equal(resample(new Float32Array(8000), 8000, 10000).length, 10000);
});
