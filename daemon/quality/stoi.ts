/**
 * Short-Time Objective Intelligibility (Taal, Hendriks, Heusdens, Jensen, IEEE TASLP 2011),
 * written from the paper's description. Yachay uses it to check that a re-encode still
 * carries intelligible speech: the score compares short-time (384 ms) one-third-octave band
 * envelopes of the clean and the processed signal, so it punishes what codecs do to speech
 * (band-limiting, smearing, noise) while ignoring a global gain change.
 */

/** The measure is defined at 10 kHz: bands end near 4.3 kHz. */
export const STOI_FS = 10000;
const FRAME = 256; // 25.6 ms analysis frames, 50 % overlap
const HOP = FRAME / 2;
const NFFT = 512; // frames zero-padded for finer band edges
const BANDS = 15;
const LOWEST_CF = 150; // Hz, centre of the first one-third-octave band
const SEG = 30; // 30 frames = 384 ms: the time scale of syllables
const CLIP = 1 + 10 ** (15 / 20); // beta = -15 dB: lower bound on signal-to-distortion per unit
const DYN_RANGE = 40; // dB below the loudest frame still counted as speech
const EPS = 2.220446049250313e-16;

// ---------------------------------------------------------------- FFT (radix 2, in place)

const twiddles = new Map<number, { cos: Float64Array; sin: Float64Array; rev: Uint32Array }>();

function plan(n: number): { cos: Float64Array; sin: Float64Array; rev: Uint32Array } {
  let p = twiddles.get(n);
  if (p) return p;
  const cos = new Float64Array(n / 2);
  const sin = new Float64Array(n / 2);
  for (let i = 0; i < n / 2; i++) { cos[i] = Math.cos((2 * Math.PI * i) / n); sin[i] = -Math.sin((2 * Math.PI * i) / n); }
  const bits = Math.log2(n);
  const rev = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
    rev[i] = r;
  }
  p = { cos, sin, rev };
  if (n <= 4096) twiddles.set(n, p); // keep the per-frame size, not alignOffset's big ones
  return p;
}

/** Forward DFT (inverse when `inverse`, unscaled) of re/im, length a power of two. */
export function fft(re: Float64Array, im: Float64Array, inverse = false): void {
  const n = re.length;
  const { cos, sin, rev } = plan(n);
  for (let i = 0; i < n; i++) {
    const j = rev[i]!;
    if (j > i) {
      const tr = re[i]!; re[i] = re[j]!; re[j] = tr;
      const ti = im[i]!; im[i] = im[j]!; im[j] = ti;
    }
  }
  const sgn = inverse ? -1 : 1;
  for (let size = 2; size <= n; size *= 2) {
    const half = size / 2;
    const step = n / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < half; k++) {
        const wr = cos[k * step]!;
        const wi = sgn * sin[k * step]!;
        const a = start + k;
        const b = a + half;
        const xr = re[b]! * wr - im[b]! * wi;
        const xi = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - xr; im[b] = im[a]! - xi;
        re[a] = re[a]! + xr; im[a] = im[a]! + xi;
      }
    }
  }
}

// ---------------------------------------------------------------- resampling

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

function gcd(a: number, b: number): number { while (b) [a, b] = [b, a % b]; return a; }

/**
 * Kaiser-windowed sinc resampler (polyphase table). The anti-alias cutoff sits at half the
 * lower rate with a transition of 10 % of it and 70 dB stopband: at 10 kHz that passes up to
 * 4.5 kHz and only folds energy into 4.5-5 kHz, above STOI's top band. From 48 kHz (or more)
 * the rate is first halved with a short filter whose only job is to keep what the final stage
 * keeps; that makes three minutes of 48 kHz cost ~30 % less than one long filter.
 */
export function resample(x: Float32Array | Float64Array, from: number, to: number): Float32Array {
  if (!(from > 0 && to > 0)) throw new RangeError(`resample: bad rates ${from} -> ${to}`);
  if (from === to) return Float32Array.from(x);
  const low = Math.min(from, to);
  let cur = x;
  let rate = from;
  while (rate >= 4 * to && Number.isInteger(rate / 2)) {
    cur = polyphase(cur, rate, rate / 2, 0.55 * low, rate / 2 - 0.55 * low);
    rate /= 2;
  }
  return polyphase(cur, rate, to, 0.45 * low, 0.55 * low);
}

/** One resampling stage: passband up to `pass` Hz, at least 70 dB down from `stop` Hz. */
function polyphase(x: Float32Array | Float64Array, from: number, to: number, pass: number, stop: number): Float32Array {
  const fc = (pass + stop) / 2 / from; // cutoff, cycles per input sample
  const df = (stop - pass) / from; // transition width, cycles per input sample
  const atten = 70;
  const beta = 0.1102 * (atten - 8.7);
  const half = Math.ceil((atten - 8) / (2.285 * 2 * Math.PI * df) / 2) + 1; // taps each side
  const width = 2 * half;
  // exact phases for rational rate pairs; otherwise quantise the fraction (error < 1/4096 sample)
  const integral = Number.isInteger(from) && Number.isInteger(to);
  const L = integral ? to / gcd(to, from) : Infinity;
  const phases = Math.min(L, 2048);
  const table = new Float64Array(phases * width);
  const i0b = besselI0(beta);
  for (let p = 0; p < phases; p++) {
    let sum = 0;
    for (let j = -half + 1; j <= half; j++) {
      const t = p / phases - j; // distance from the output instant to input sample i0 + j
      const u = t / half;
      const win = Math.abs(u) >= 1 ? 0 : besselI0(beta * Math.sqrt(1 - u * u)) / i0b;
      const arg = 2 * fc * t;
      const h = arg === 0 ? 2 * fc : (2 * fc * Math.sin(Math.PI * arg)) / (Math.PI * arg);
      table[p * width + j + half - 1] = h * win;
      sum += h * win;
    }
    for (let k = 0; k < width; k++) table[p * width + k]! /= sum; // unity DC gain in every phase
  }
  const nOut = Math.floor((x.length * to) / from);
  const out = new Float32Array(nOut);
  const M = integral ? from / gcd(to, from) : 0;
  for (let n = 0; n < nOut; n++) {
    let i0: number;
    let p: number;
    if (phases === L) { i0 = Math.floor((n * M) / L); p = (n * M) % L; } else {
      const t = (n * from) / to;
      i0 = Math.floor(t);
      p = Math.round((t - i0) * phases);
      if (p === phases) { p = 0; i0++; }
    }
    const base = p * width;
    const k0 = i0 - half + 1;
    let acc = 0;
    if (k0 >= 0 && k0 + width <= x.length) {
      for (let k = 0; k < width; k++) acc += table[base + k]! * x[k0 + k]!;
    } else {
      for (let k = 0; k < width; k++) {
        const idx = k0 + k;
        if (idx >= 0 && idx < x.length) acc += table[base + k]! * x[idx]!;
      }
    }
    out[n] = acc;
  }
  return out;
}

// ---------------------------------------------------------------- STOI proper

/** MATLAB-style `hanning(N)`: symmetric, no zero end points, as the reference uses. */
function hann(n: number): Float64Array {
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = 0.5 * (1 - Math.cos((2 * Math.PI * (i + 1)) / (n + 1)));
  return w;
}
const WINDOW = hann(FRAME);

/** Frames start every HOP samples while a whole frame still fits (as in the reference). */
function frameStarts(len: number): number {
  return len > FRAME ? Math.floor((len - FRAME - 1) / HOP) + 1 : 0;
}

/** Level (dB) of the loudest windowed frame of x: the reference the silence threshold hangs from. */
function loudestFrame(x: Float64Array): number {
  const count = frameStarts(x.length);
  let max = -Infinity;
  for (let f = 0; f < count; f++) {
    let s = 0;
    for (let i = 0; i < FRAME; i++) { const v = WINDOW[i]! * x[f * HOP + i]!; s += v * v; }
    const e = 20 * Math.log10(Math.sqrt(s) + EPS);
    if (e > max) max = e;
  }
  return max;
}

/**
 * Drop frames more than 40 dB below the loudest frame of the clean signal (pauses carry no
 * intelligibility and would dominate the average), then overlap-add the kept windowed frames
 * of both signals back together.
 */
function removeSilentFrames(x: Float64Array, y: Float64Array): [Float64Array, Float64Array] {
  const max = loudestFrame(x);
  const count = frameStarts(x.length);
  const kept: number[] = [];
  for (let f = 0; f < count; f++) {
    let s = 0;
    for (let i = 0; i < FRAME; i++) { const v = WINDOW[i]! * x[f * HOP + i]!; s += v * v; }
    if (20 * Math.log10(Math.sqrt(s) + EPS) > max - DYN_RANGE) kept.push(f);
  }
  const outLen = kept.length ? (kept.length - 1) * HOP + FRAME : 0;
  const xs = new Float64Array(outLen);
  const ys = new Float64Array(outLen);
  for (let j = 0; j < kept.length; j++) {
    const f = kept[j]!;
    for (let i = 0; i < FRAME; i++) {
      xs[j * HOP + i]! += WINDOW[i]! * x[f * HOP + i]!;
      ys[j * HOP + i]! += WINDOW[i]! * y[f * HOP + i]!;
    }
  }
  return [xs, ys];
}

/** FFT-bin ranges [lo, hi) of the 15 one-third-octave bands, edges snapped to the nearest bin. */
const BAND_BINS: Array<[number, number]> = (() => {
  const nearest = (f: number): number => {
    let best = 0;
    for (let k = 1; k <= NFFT / 2; k++) {
      if (Math.abs((k * STOI_FS) / NFFT - f) < Math.abs((best * STOI_FS) / NFFT - f)) best = k;
    }
    return best;
  };
  const bands: Array<[number, number]> = [];
  for (let j = 0; j < BANDS; j++) {
    bands.push([nearest(LOWEST_CF * 2 ** ((2 * j - 1) / 6)), nearest(LOWEST_CF * 2 ** ((2 * j + 1) / 6))]);
  }
  return bands;
})();

/**
 * The 15 band norms of one windowed frame of each signal (`re` = x, `im` = y on entry, both
 * NFFT long and zero-padded; overwritten). Both are real, so one complex FFT of x + i·y
 * yields the two spectra at once (X[k] = (Z[k] + conj Z[N-k]) / 2, Y[k] = (Z[k] - conj Z[N-k]) / 2i):
 * half the work. Band j lands at `ex[j * stride + at]`.
 */
function frameBands(re: Float64Array, im: Float64Array, ex: Float64Array, ey: Float64Array, at: number, stride: number): void {
  fft(re, im);
  for (let j = 0; j < BANDS; j++) {
    const [lo, hi] = BAND_BINS[j]!;
    let sx = 0;
    let sy = 0;
    for (let k = lo; k < hi; k++) {
      const ar = re[k]!; const ai = im[k]!;
      const br = re[(NFFT - k) % NFFT]!; const bi = im[(NFFT - k) % NFFT]!;
      sx += (ar + br) ** 2 + (ai - bi) ** 2;
      sy += (ar - br) ** 2 + (ai + bi) ** 2;
    }
    ex[j * stride + at] = Math.sqrt(sx / 4);
    ey[j * stride + at] = Math.sqrt(sy / 4);
  }
}

/** Band envelopes of both signals, band-major (`env[j * frames + m]` = norm of band j in frame m). */
function bandEnvelopes(x: Float64Array, y: Float64Array): { ex: Float64Array; ey: Float64Array; frames: number } {
  const frames = frameStarts(x.length);
  const ex = new Float64Array(BANDS * frames);
  const ey = new Float64Array(BANDS * frames);
  const re = new Float64Array(NFFT);
  const im = new Float64Array(NFFT);
  for (let m = 0; m < frames; m++) {
    re.fill(0); im.fill(0);
    for (let i = 0; i < FRAME; i++) { re[i] = WINDOW[i]! * x[m * HOP + i]!; im[i] = WINDOW[i]! * y[m * HOP + i]!; }
    frameBands(re, im, ex, ey, m, frames);
  }
  return { ex, ey, frames };
}

/**
 * The correlation of one unit: SEG envelope values of one band, clean `xb` and degraded `yb`
 * from `s0`. The degraded band is normalised to the clean energy, then clipped so one badly
 * distorted unit cannot dominate (the SDR floor beta). `yc` is scratch of SEG values.
 */
function unitCorrelation(xb: Float64Array, yb: Float64Array, s0: number, yc: Float64Array): number {
  let ex = 0; let ey = 0;
  for (let i = 0; i < SEG; i++) { ex += xb[s0 + i]! ** 2; ey += yb[s0 + i]! ** 2; }
  const alpha = Math.sqrt(ex / (ey + EPS));
  let mx = 0; let my = 0;
  for (let i = 0; i < SEG; i++) {
    const xv = xb[s0 + i]!;
    const v = Math.min(alpha * yb[s0 + i]!, CLIP * xv);
    yc[i] = v; mx += xv; my += v;
  }
  mx /= SEG; my /= SEG;
  let sxy = 0; let sxx = 0; let syy = 0;
  for (let i = 0; i < SEG; i++) {
    const a = xb[s0 + i]! - mx;
    const b = yc[i]! - my;
    sxy += a * b; sxx += a * a; syy += b * b;
  }
  return sxy / (Math.sqrt(sxx) * Math.sqrt(syy) + EPS);
}

/**
 * The sum of the per-unit correlations and how many units (band x 384 ms segment) they are:
 * the score is total / units.
 */
export interface StoiSums { total: number; units: number }

function toStoiRate(s: Float32Array, fs: number): Float64Array {
  // (the typed-array constructor copies natively; Float64Array.from would iterate)
  return new Float64Array(fs === STOI_FS ? s : resample(s, fs, STOI_FS));
}

/** units of clean/degraded at STOI_FS, equal length; a stretch shorter than one segment has none */
function stoiSums(x: Float64Array, y: Float64Array): StoiSums {
  const [xs, ys] = removeSilentFrames(x, y);
  const { ex: X, ey: Y, frames: M } = bandEnvelopes(xs, ys);
  if (M < SEG) return { total: 0, units: 0 };
  let total = 0;
  const yc = new Float64Array(SEG);
  for (let j = 0; j < BANDS; j++) {
    const xb = X.subarray(j * M, (j + 1) * M);
    const yb = Y.subarray(j * M, (j + 1) * M);
    for (let m = SEG - 1; m < M; m++) total += unitCorrelation(xb, yb, m - SEG + 1, yc);
  }
  return { total, units: BANDS * (M - SEG + 1) };
}

function tooShort(): RangeError {
  return new RangeError(`STOI needs at least ${SEG} speech frames (~0.4 s of speech)`);
}

/** STOI in [-1, 1] (≈1 = as intelligible as the clean signal). Signals are cut to equal length. */
export function stoi(clean: Float32Array, degraded: Float32Array, fs: number): number {
  const len = Math.min(clean.length, degraded.length);
  const r = stoiSums(toStoiRate(clean.subarray(0, len), fs), toStoiRate(degraded.subarray(0, len), fs));
  if (r.units === 0) throw tooShort();
  return r.total / r.units;
}

export interface Interval { start: number; end: number }

/**
 * STOI over the given intervals (seconds) only, e.g. the sentences of a lecture, so music and
 * long pauses do not enter the score. `lag` (from alignOffset) is applied to degraded.
 */
export function stoiOverIntervals(clean: Float32Array, degraded: Float32Array, fs: number,
  intervals: Interval[], lag = 0): number {
  const pick = (s: Float32Array, shift: number): Float32Array => {
    const parts: Float32Array[] = [];
    for (const iv of intervals) {
      const a = Math.max(0, Math.round(iv.start * fs));
      const b = Math.min(clean.length, Math.round(iv.end * fs));
      if (b <= a) continue;
      const part = new Float32Array(b - a); // zero where the shifted degraded runs out
      for (let i = a; i < b; i++) { const k = i + shift; if (k >= 0 && k < s.length) part[i - a] = s[k]!; }
      parts.push(part);
    }
    const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  };
  return stoi(pick(clean, 0), pick(degraded, lag), fs);
}

// ---------------------------------------------------------------- alignment

/** Mean |x| over blocks of `b` samples, zero-mean: a cheap envelope that survives codecs. */
function envelope(x: Float32Array, b: number): Float64Array {
  const n = Math.floor(x.length / b);
  const e = new Float64Array(n);
  let mean = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < b; k++) s += Math.abs(x[i * b + k]!);
    e[i] = s / b; mean += e[i]! / n;
  }
  for (let i = 0; i < n; i++) e[i]! -= mean;
  return e;
}

/**
 * Lag in samples to apply to `degraded` so that degraded[n + lag] ≈ clean[n] (positive when
 * the degraded copy is late), searched within ±maxLagSec. A 1 ms envelope cross-correlation
 * (FFT, so the whole file costs little) finds the neighbourhood; the waveforms of the loudest
 * 4 s then pin it to the sample, which matters because STOI is sensitive to misalignment.
 */
export function alignOffset(clean: Float32Array, degraded: Float32Array, fs: number, maxLagSec: number): number {
  const maxLag = Math.max(0, Math.round(maxLagSec * fs));
  const b = Math.max(1, Math.round(fs / 1000));
  const ec = envelope(clean, b);
  const ed = envelope(degraded, b);
  const maxB = Math.ceil(maxLag / b);
  let n = 1;
  while (n < Math.max(ec.length, ed.length) + maxB + 1) n *= 2;
  const cr = new Float64Array(n); cr.set(ec);
  const ci = new Float64Array(n);
  const dr = new Float64Array(n); dr.set(ed);
  const di = new Float64Array(n);
  fft(cr, ci); fft(dr, di);
  for (let k = 0; k < n; k++) { // conj(C) * D -> sum_n c[n] d[n + lag]
    const r = cr[k]! * dr[k]! + ci[k]! * di[k]!;
    const i = cr[k]! * di[k]! - ci[k]! * dr[k]!;
    cr[k] = r; ci[k] = i;
  }
  fft(cr, ci, true);
  let coarse = 0;
  let best = -Infinity;
  for (let l = -maxB; l <= maxB; l++) {
    const v = cr[(l + n) % n]!;
    if (v > best) { best = v; coarse = l; }
  }
  // refine on the loudest stretch of clean
  const win = Math.min(clean.length, 4 * fs);
  const winB = Math.max(1, Math.floor(win / b));
  let start = 0;
  let run = 0;
  let loud = -Infinity;
  for (let i = 0; i < ec.length; i++) {
    run += ec[i]!;
    if (i >= winB) run -= ec[i - winB]!;
    if (i >= winB - 1 && run > loud) { loud = run; start = (i - winB + 1) * b; }
  }
  const lo = Math.max(-maxLag, coarse * b - 3 * b);
  const hi = Math.min(maxLag, coarse * b + 3 * b);
  let lag = Math.max(lo, Math.min(hi, coarse * b));
  best = -Infinity;
  for (let l = lo; l <= hi; l++) {
    let s = 0;
    const a = Math.max(start, -l);
    const e = Math.min(start + win, degraded.length - l, clean.length);
    for (let i = a; i < e; i++) s += clean[i]! * degraded[i + l]!;
    if (s > best) { best = s; lag = l; }
  }
  return lag;
}

// ---------------------------------------------------------------- a whole lesson, window by window

/** Audio read on demand: [start, start+count) with zeros outside the recording. */
export interface PcmReader {
  readonly length: number;
  read(start: number, count: number): Float32Array;
}

export function arrayReader(x: Float32Array): PcmReader {
  return {
    length: x.length,
    read(start, count) {
      if (start >= 0 && start + count <= x.length) return x.subarray(start, start + count);
      const out = new Float32Array(Math.max(0, count));
      const a = Math.max(0, start);
      const b = Math.min(x.length, start + count);
      if (b > a) out.set(x.subarray(a, b), a - start);
      return out;
    },
  };
}

export interface LessonStoiOptions {
  /** speech to measure, seconds */
  intervals: Interval[];
  /** the lag search range of alignOffset */
  maxLagSec: number;
  /** seconds of speech per window: what either signal holds in memory at once */
  windowSec?: number;
  /** seconds of audio the lag is measured on, from just before the first speech */
  alignSec?: number;
}

export interface LessonStoi { value: number; lag: number; windows: number }

/**
 * Sample ranges of the speech intervals in groups of at most `max` samples: the windows.
 * An interval longer than what is left of a window is split across two.
 */
export function speechWindows(intervals: Interval[], fs: number, length: number, max: number): Array<Array<[number, number]>> {
  const windows: Array<Array<[number, number]>> = [];
  let cur: Array<[number, number]> = [];
  let room = max;
  for (const iv of intervals) {
    let a = Math.max(0, Math.round(iv.start * fs));
    const b = Math.min(length, Math.round(iv.end * fs));
    while (b > a) {
      const take = Math.min(b - a, room);
      cur.push([a, a + take]);
      a += take; room -= take;
      if (room === 0) { windows.push(cur); cur = []; room = max; }
    }
  }
  if (cur.length) windows.push(cur);
  return windows;
}

function gather(r: PcmReader, ranges: Array<[number, number]>, shift: number): Float32Array {
  const out = new Float32Array(ranges.reduce((n, [a, b]) => n + b - a, 0));
  let o = 0;
  for (const [a, b] of ranges) { out.set(r.read(a + shift, b - a), o); o += b - a; }
  return out;
}

/**
 * Cuts a signal pair that arrives in pieces into the frames the whole would have: one every
 * HOP samples, each followed by at least one more sample (as frameStarts counts them).
 */
class Framer {
  private px = new Float64Array(0);
  private py = new Float64Array(0);
  constructor(private readonly onFrame: (x: Float64Array, y: Float64Array, at: number) => void) {}
  push(x: Float64Array, y: Float64Array): void {
    const bx = new Float64Array(this.px.length + x.length); bx.set(this.px); bx.set(x, this.px.length);
    const by = new Float64Array(this.py.length + y.length); by.set(this.py); by.set(y, this.py.length);
    let at = 0;
    for (; at + FRAME < bx.length; at += HOP) this.onFrame(bx, by, at);
    this.px = bx.slice(at); this.py = by.slice(at);
  }
}

function frameLevel(x: Float64Array, at: number): number {
  let s = 0;
  for (let i = 0; i < FRAME; i++) { const v = WINDOW[i]! * x[at + i]!; s += v * v; }
  return 20 * Math.log10(Math.sqrt(s) + EPS);
}

/**
 * stoiSums computed frame by frame as the signal streams past, holding only the last three
 * kept frames and the last SEG band envelopes: the overlap-added frame m of the whole
 * computation is rebuilt from kept frames m-1, m and m+1, and each unit is scored as soon as
 * its last envelope frame exists. Same sums as the whole (up to the order of additions).
 */
class StoiStream {
  total = 0;
  units = 0;
  private readonly keptX = [new Float64Array(FRAME), new Float64Array(FRAME), new Float64Array(FRAME)];
  private readonly keptY = [new Float64Array(FRAME), new Float64Array(FRAME), new Float64Array(FRAME)];
  private kept = 0;
  private readonly envX = new Float64Array(BANDS * SEG); // ring of SEG frames per band
  private readonly envY = new Float64Array(BANDS * SEG);
  private env = 0;
  private readonly re = new Float64Array(NFFT);
  private readonly im = new Float64Array(NFFT);
  private readonly xb = new Float64Array(SEG);
  private readonly yb = new Float64Array(SEG);
  private readonly yc = new Float64Array(SEG);

  /** `floor`: frames at or below this level (dB) are silence */
  constructor(private readonly floor: number) {}

  frame(x: Float64Array, y: Float64Array, at: number): void {
    if (!(frameLevel(x, at) > this.floor)) return;
    const slot = this.kept % 3;
    const kx = this.keptX[slot]!; const ky = this.keptY[slot]!;
    for (let i = 0; i < FRAME; i++) { kx[i] = WINDOW[i]! * x[at + i]!; ky[i] = WINDOW[i]! * y[at + i]!; }
    this.kept++;
    if (this.kept >= 2) this.envelope(this.kept - 2);
  }

  private envelope(m: number): void {
    const cx = this.keptX[m % 3]!; const cy = this.keptY[m % 3]!;
    const nx = this.keptX[(m + 1) % 3]!; const ny = this.keptY[(m + 1) % 3]!;
    const px = m > 0 ? this.keptX[(m + 2) % 3]! : undefined; const py = this.keptY[(m + 2) % 3]!;
    const { re, im } = this;
    re.fill(0); im.fill(0);
    for (let i = 0; i < HOP; i++) {
      const ox = px ? px[HOP + i]! + cx[i]! : cx[i]!;
      const oy = px ? py[HOP + i]! + cy[i]! : cy[i]!;
      re[i] = WINDOW[i]! * ox; im[i] = WINDOW[i]! * oy;
    }
    for (let i = HOP; i < FRAME; i++) {
      re[i] = WINDOW[i]! * (cx[i]! + nx[i - HOP]!); im[i] = WINDOW[i]! * (cy[i]! + ny[i - HOP]!);
    }
    frameBands(re, im, this.envX, this.envY, m % SEG, SEG);
    this.env = m + 1;
    if (this.env < SEG) return;
    for (let j = 0; j < BANDS; j++) {
      for (let i = 0; i < SEG; i++) {
        const k = j * SEG + ((m - SEG + 1 + i) % SEG);
        this.xb[i] = this.envX[k]!; this.yb[i] = this.envY[k]!;
      }
      this.total += unitCorrelation(this.xb, this.yb, 0, this.yc);
      this.units++;
    }
  }
}

/**
 * stoiOverIntervals for a lesson of any length without either signal whole in memory: the
 * lag is measured once on an early stretch (alignSec from just before the first speech), then
 * the speech streams through in windows of windowSec, twice: a first pass finds the loudest
 * clean frame (the 40 dB silence rule hangs from it), the second scores the units as they
 * complete (StoiStream). At STOI_FS this is the whole computation; other rates are resampled
 * per window, which only touches a few samples at each window's edges.
 */
export function stoiOfLesson(clean: PcmReader, degraded: PcmReader, fs: number, opts: LessonStoiOptions): LessonStoi {
  const first = opts.intervals.find((iv) => iv.end > iv.start);
  if (!first) throw tooShort();
  const alignFrom = Math.max(0, Math.round((first.start - 1) * fs));
  const alignLen = Math.min(clean.length - alignFrom, Math.round((opts.alignSec ?? 60) * fs));
  const lag = alignLen > 0
    ? alignOffset(clean.read(alignFrom, alignLen), degraded.read(alignFrom, alignLen), fs, opts.maxLagSec)
    : 0;
  const windows = speechWindows(opts.intervals, fs, clean.length, Math.round((opts.windowSec ?? 60) * fs));
  let loudest = -Infinity;
  const levels = new Framer((x, _y, at) => { loudest = Math.max(loudest, frameLevel(x, at)); });
  for (const w of windows) { const x = toStoiRate(gather(clean, w, 0), fs); levels.push(x, x); }
  const stream = new StoiStream(loudest - DYN_RANGE);
  const frames = new Framer((x, y, at) => stream.frame(x, y, at));
  for (const w of windows) frames.push(toStoiRate(gather(clean, w, 0), fs), toStoiRate(gather(degraded, w, lag), fs));
  if (stream.units === 0) throw tooShort();
  return { value: stream.total / stream.units, lag, windows: windows.length };
}
