import { seeded } from '../../daemon/models/rate/sweep.js';

/**
 * Fixed test signals for checking STOI against an independent implementation: deterministic
 * (a seeded generator, no Math.random), 10 kHz, 6 s. "clean" is speech-like: a voiced source at
 * a gliding pitch through three moving formant-like resonances, switched on and off at a
 * syllable rate with pauses; the degraded versions are what the box does to speech or what a
 * classroom does to it.
 */
export const FS = 10_000;

const rng = seeded;

export function cleanSignal(seconds = 6): Float64Array {
  const n = seconds * FS;
  const x = new Float64Array(n);
  let phase = 0;
  for (let i = 0; i < n; i++) {
    const t = i / FS;
    const f0 = 120 + 30 * Math.sin(2 * Math.PI * 0.7 * t);
    phase += (2 * Math.PI * f0) / FS;
    // syllables at 4 Hz, a pause of 0.5 s every 2 s
    const syll = Math.max(0, Math.sin(2 * Math.PI * 4 * t)) ** 2 * ((t % 2) < 1.5 ? 1 : 0);
    let v = 0;
    for (let h = 1; h <= 30; h++) {
      const f = h * f0;
      if (f > 4800) break;
      const formants = [500 + 200 * Math.sin(2 * Math.PI * 1.1 * t), 1500 + 400 * Math.sin(2 * Math.PI * 0.9 * t), 2600];
      const gain = formants.reduce((g, fc) => g + 1 / (1 + ((f - fc) / 120) ** 2), 0);
      v += gain * Math.sin(h * phase) / h;
    }
    x[i] = 0.3 * syll * v;
  }
  return x;
}

/** white noise at `snrDb` against the clean signal's power */
export function withNoise(clean: Float64Array, snrDb: number, seed: number): Float64Array {
  const r = rng(seed);
  let p = 0;
  for (const v of clean) p += v * v;
  p /= clean.length;
  const sigma = Math.sqrt(p / 10 ** (snrDb / 10));
  const out = new Float64Array(clean.length);
  for (let i = 0; i < clean.length; i++) {
    // Box-Muller
    const u = Math.max(1e-12, r()); const w = r();
    out[i] = clean[i]! + sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * w);
  }
  return out;
}

/** a one-pole low-pass at `fc` Hz: a muffled room or a narrow codec */
export function lowPassed(clean: Float64Array, fc: number): Float64Array {
  const a = Math.exp((-2 * Math.PI * fc) / FS);
  const out = new Float64Array(clean.length);
  let y = 0;
  for (let i = 0; i < clean.length; i++) { y = (1 - a) * clean[i]! + a * y; out[i] = y; }
  return out;
}

/** a crude room: the signal plus decaying echoes every 37 ms */
export function reverberant(clean: Float64Array): Float64Array {
  const out = Float64Array.from(clean);
  const d = Math.round(0.037 * FS);
  for (let k = 1; k <= 12; k++) {
    const g = 0.55 ** k;
    for (let i = k * d; i < clean.length; i++) out[i]! += g * clean[i - k * d]!;
  }
  return out;
}

/** samples rounded to a few levels: a badly set recorder gain */
export function quantized(clean: Float64Array, levels: number): Float64Array {
  let peak = 0;
  for (const v of clean) peak = Math.max(peak, Math.abs(v));
  const q = peak / levels;
  return clean.map((v) => Math.round(v / q) * q);
}

export function cases(): Record<string, Float64Array> {
  const c = cleanSignal();
  return {
    identical: Float64Array.from(c),
    'noise+5dB': withNoise(c, 5, 7),
    'noise-5dB': withNoise(c, -5, 11),
    'lowpass800': lowPassed(c, 800),
    reverb: reverberant(c),
    quantized4: quantized(c, 4),
  };
}
