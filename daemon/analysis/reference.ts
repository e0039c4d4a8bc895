/**
 * Pure TypeScript twin of the native kernels (native/src/scalar/kernels.cc): same loop
 * order, same double arithmetic, same finishing formulas, so the addon's scalar path
 * equals it bit for bit and its SIMD paths within the documented tolerance.
 * Tests use it as the oracle and the bench as the baseline; production never falls
 * back to it (see native.ts).
 */
import type { Isa, NativeKernels, SobelStats } from './native.js';

const INT32_MAX = 2147483647;
/** What the addon accepts as bytes (Buffer is a Uint8Array). */
type Bytes = Uint8Array | Uint8ClampedArray;

/**
 * "magnitude > threshold" as an integer test on m = gx^2+gy^2:
 * sqrt(m) > t <=> m > floor(t*t) for t >= 0. Negative t: every pixel; NaN or huge: none.
 */
export function edgeThresholdSq(t: number): number {
  if (Number.isNaN(t)) return INT32_MAX;
  if (t < 0) return -1;
  const sq = Math.floor(t * t);
  return sq >= INT32_MAX ? INT32_MAX : sq;
}

/** Population std dev from sums: sqrt(E[x^2] - E[x]^2), clamped at 0 (as kernels.h). */
export function stdFromSums(sum: number, sumSq: number, n: number): number {
  if (n <= 0) return 0;
  const mean = sum / n;
  const v = sumSq / n - mean * mean;
  return v > 0 ? Math.sqrt(v) : 0;
}

function bytes(v: unknown, name: string): Bytes {
  if (v instanceof Uint8Array || v instanceof Uint8ClampedArray) return v;
  throw new TypeError(`${name} must be a Uint8Array`);
}

function int(v: unknown, name: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v >= 2 ** 31) {
    throw new TypeError(`${name} must be an integer >= ${min}`);
  }
  return v;
}

function fits(len: number, w: number, h: number, n: number): void {
  if (w * h * n > len) throw new TypeError(`buffer holds ${len} bytes, need w*h${n === 1 ? '' : '*n'} = ${w * h * n}`);
}

function samePair(a: unknown, b: unknown): [Bytes, Bytes] {
  const x = bytes(a, 'a');
  const y = bytes(b, 'b');
  if (x.length !== y.length) throw new TypeError(`a and b must have the same length (${x.length} != ${y.length})`);
  return [x, y];
}

// Hot loops take equal-length views (subarray) rather than offsets: V8 keeps plain
// a[i] loops tight, so the bench compares the addon against reasonable TypeScript.
function sadOf(a: Bytes, b: Bytes): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d < 0 ? -d : d;
  }
  return s;
}

/** [sum(b-a), sum((b-a)^2)]: both exact in doubles up to 2^53 / 65025 pixels. */
function diffOf(a: Bytes, b: Bytes): [number, number] {
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < a.length; i++) {
    const d = b[i]! - a[i]!;
    sum += d;
    sumSq += d * d;
  }
  return [sum, sumSq];
}

/** Sobel sums over interior pixels of the frame starting at `o`: [sum mag, sum mag^2, edges]. */
function sobelAt(img: Bytes, o: number, w: number, h: number, thrSq: number): [number, number, number] {
  let mag = 0;
  let magSq = 0;
  let edges = 0;
  if (w < 3 || h < 3) return [0, 0, 0];
  for (let y = 1; y + 1 < h; y++) {
    const r0 = o + (y - 1) * w;
    const r1 = r0 + w;
    const r2 = r1 + w;
    // Slide a 3x3 window along the row: columns x-1 (a*), x (b*), x+1 (c*) of rows 0..2.
    let a0 = img[r0]!, a1 = img[r1]!, a2 = img[r2]!;
    let b0 = img[r0 + 1]!, b1 = img[r1 + 1]!, b2 = img[r2 + 1]!;
    for (let x = 1; x + 1 < w; x++) {
      const c0 = img[r0 + x + 1]!, c1 = img[r1 + x + 1]!, c2 = img[r2 + x + 1]!;
      const gx = (c0 + 2 * c1 + c2) - (a0 + 2 * a1 + a2);
      const gy = (a2 + 2 * b2 + c2) - (a0 + 2 * b0 + c0);
      const m = gx * gx + gy * gy;
      mag += Math.sqrt(m);
      magSq += m;
      if (m > thrSq) edges++;
      a0 = b0; a1 = b1; a2 = b2;
      b0 = c0; b1 = c1; b2 = c2;
    }
  }
  return [mag, magSq, edges];
}

function sobelStatsAt(img: Bytes, o: number, w: number, h: number, thrSq: number): SobelStats {
  if (w < 3 || h < 3) return { si: 0, edgeDensity: 0 };
  const [mag, magSq, edges] = sobelAt(img, o, w, h, thrSq);
  const n = (w - 2) * (h - 2);
  return { si: stdFromSums(mag, magSq, n), edgeDensity: edges / n };
}

export const reference: NativeKernels = {
  isa(): Isa {
    return 'scalar';
  },

  sad(a, b) {
    const [x, y] = samePair(a, b);
    return sadOf(x, y);
  },

  sobel(img, w, h, threshold) {
    const p = bytes(img, 'img');
    int(w, 'w', 0);
    int(h, 'h', 0);
    if (typeof threshold !== 'number') throw new TypeError('threshold must be a number');
    fits(p.length, w, h, 1);
    return sobelStatsAt(p, 0, w, h, edgeThresholdSq(threshold));
  },

  ti(a, b) {
    const [x, y] = samePair(a, b);
    const [sum, sumSq] = diffOf(x, y);
    return stdFromSums(sum, sumSq, x.length);
  },

  histogram(img) {
    const p = bytes(img, 'img');
    const out = new Uint32Array(256);
    for (let i = 0; i < p.length; i++) out[p[i]!]!++;
    return out;
  },

  downscale2x(img, w, h) {
    const p = bytes(img, 'img');
    int(w, 'w', 0);
    int(h, 'h', 0);
    fits(p.length, w, h, 1);
    const ow = w >> 1;
    const oh = h >> 1;
    const out = new Uint8Array(ow * oh);
    for (let y = 0; y < oh; y++) {
      const r0 = 2 * y * w;
      const r1 = r0 + w;
      for (let x = 0; x < ow; x++) {
        out[y * ow + x] = (p[r0 + 2 * x]! + p[r0 + 2 * x + 1]! + p[r1 + 2 * x]! + p[r1 + 2 * x + 1]! + 2) >> 2;
      }
    }
    return out;
  },

  audioFeatures(pcm, frameSize) {
    if (!(pcm instanceof Float32Array)) throw new TypeError('pcm must be a Float32Array');
    const n = int(frameSize, 'frameSize', 1);
    const frames = Math.floor(pcm.length / n);
    const out = new Float32Array(frames * 5);
    for (let f = 0; f < frames; f++) {
      const o = f * n;
      let x2 = 0;
      let lo2 = 0;
      let d2 = 0;
      let zc = 0;
      for (let i = 0; i < n; i++) {
        const v = pcm[o + i]!;
        x2 += v * v;
        if (i >= 1) {
          const prev = pcm[o + i - 1]!;
          const d = v - prev;
          d2 += d * d;
          if ((v >= 0) !== (prev >= 0)) zc++;
        }
        if (i >= 7) {
          let s = 0;
          for (let k = 0; k < 8; k++) s += pcm[o + i - k]!;
          lo2 += s * s; // (s/8)^2 summed = s^2 summed / 64, exactly (power-of-two scale)
        }
      }
      const ms = x2 / n;
      const low = n > 7 ? lo2 / 64 / (n - 7) : 0;
      const high = n > 1 ? d2 / (n - 1) : 0;
      const mid = ms - low - high;
      out[f * 5] = Math.sqrt(ms);
      out[f * 5 + 1] = n > 1 ? zc / (n - 1) : 0;
      out[f * 5 + 2] = low;
      out[f * 5 + 3] = mid > 0 ? mid : 0;
      out[f * 5 + 4] = high;
    }
    return out;
  },

  frameFeatures(frames, w, h, n, edgeThreshold) {
    const buf = bytes(frames, 'frames');
    int(w, 'w', 1);
    int(h, 'h', 1);
    int(n, 'n', 0);
    if (typeof edgeThreshold !== 'number') throw new TypeError('edgeThreshold must be a number');
    fits(buf.length, w, h, n);
    const px = w * h;
    const thrSq = edgeThresholdSq(edgeThreshold);
    const out = new Float32Array(n * 6);
    for (let i = 0; i < n; i++) {
      const o = i * px;
      const st = sobelStatsAt(buf, o, w, h, thrSq);
      const cur = buf.subarray(o, o + px);
      let sum = 0;
      let sumSq = 0;
      for (let k = 0; k < px; k++) {
        const v = cur[k]!;
        sum += v;
        sumSq += v * v;
      }
      let diff = 0;
      let ti = 0;
      if (i > 0) {
        const prev = buf.subarray(o - px, o);
        diff = sadOf(prev, cur) / px;
        const [ds, dsq] = diffOf(prev, cur);
        ti = stdFromSums(ds, dsq, px);
      }
      out.set([diff, st.si, ti, st.edgeDensity, sum / px, stdFromSums(sum, sumSq, px)], i * 6);
    }
    return out;
  },
};
