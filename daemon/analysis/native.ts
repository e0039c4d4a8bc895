/**
 * Loader for the C++ SIMD analysis kernels (native/). The addon is required, never
 * optional: when it does not load we stop with one YachayError that lists every path
 * tried and why, instead of silently running the ~10-40x slower TypeScript reference.
 * The worker logs `isa()` at start so a slow appliance shows which path it runs.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { YachayError } from '../errors.js';

export type Isa = 'avx2' | 'sse2' | 'neon' | 'scalar';
export interface SobelStats { si: number; edgeDensity: number }

/**
 * Kernel contract, shared by the addon and daemon/analysis/reference.ts.
 * Integer results (sad, histogram, downscale2x, edge counts) are exact on every path.
 * Float results agree with the reference within 1e-4 relative on SIMD paths (they take
 * sqrt and sum in float lanes) and bit for bit on the scalar path; `midEnergy` is a
 * difference of energies, so its error is relative to rms^2, not to itself.
 * Wrong argument types or sizes throw a TypeError.
 */
export interface NativeKernels {
  isa(): Isa;
  /** sum of |a[i]-b[i]| over all bytes (as a JS number; use 64-bit accumulation) */
  sad(a: Uint8Array, b: Uint8Array): number;
  /** Sobel over interior pixels (x in 1..w-2, y in 1..h-2) of a gray frame; magnitude = sqrt(gx^2+gy^2);
   *  si = population standard deviation of the magnitude (ITU-T P.910 SI for one frame);
   *  edgeDensity = fraction of interior pixels with magnitude > threshold. w<3 or h<3 → {si:0, edgeDensity:0} */
  sobel(img: Uint8Array, w: number, h: number, threshold: number): SobelStats;
  /** population std dev of (b[i]-a[i]) (P.910 TI for one frame pair) */
  ti(a: Uint8Array, b: Uint8Array): number;
  /** 256-bin histogram of bytes */
  histogram(img: Uint8Array): Uint32Array;
  /** 2x2 box average (rounded: (a+b+c+d+2)>>2), output floor(w/2) x floor(h/2) */
  downscale2x(img: Uint8Array, w: number, h: number): Uint8Array;
  /** per frame of `frameSize` samples (last partial frame dropped): 5 floats
   *  [rms, zcr (sign changes / (frameSize-1)), lowEnergy, midEnergy, highEnergy]
   *  lowEnergy = mean square of an 8-tap moving average (y[i]=mean(x[i-7..i]) for i>=7 within the frame),
   *  highEnergy = mean square of the first difference (x[i]-x[i-1], i>=1 within the frame),
   *  midEnergy = max(0, rms^2 - lowEnergy - highEnergy). Returns Float32Array(frames*5). */
  audioFeatures(pcm: Float32Array, frameSize: number): Float32Array;
  /** batch for the analyser: n consecutive w*h gray frames in one buffer → Float32Array(n*6), per frame
   *  [meanAbsDiffPrev (sad/(w*h) vs previous frame; 0 for frame 0), si, ti (vs previous; 0 for frame 0),
   *   edgeDensity, meanLuma, lumaStd] using the same kernels. */
  frameFeatures(frames: Uint8Array, w: number, h: number, n: number, edgeThreshold: number): Float32Array;
}

const require = createRequire(import.meta.url);
const ADDON = 'yachay_native.node';

/** Where the addon may be, in order: an explicit override, then node-gyp's outputs. */
export function nativeCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const built = (config: string): string =>
    fileURLToPath(new URL(`../../native/build/${config}/${ADDON}`, import.meta.url));
  const paths = [built('Release'), built('Debug')];
  const override = env['YACHAY_NATIVE_PATH'];
  return override ? [override, ...paths] : paths;
}

/** Requires the first candidate that loads; otherwise one error naming each failure. */
export function loadNativeFrom(paths: readonly string[]): NativeKernels {
  const tried: string[] = [];
  for (const p of paths) {
    try {
      return require(p) as NativeKernels;
    } catch (err) {
      // Keep only the first line: dlopen messages repeat the path, stacks say nothing here.
      const msg = (err as Error).message.split('\n')[0] ?? String(err);
      tried.push(`  ${p}: ${msg}`);
    }
  }
  throw new YachayError('YCH_ERR_NATIVE_LOAD', [
    `native analysis kernels not loadable on ${process.platform}-${process.arch}; tried:`,
    ...(tried.length ? tried : ['  (no candidate paths)']),
    'fix: apt-get install -y g++ make python3 && npm run build:native' +
      ' (or point YACHAY_NATIVE_PATH at a built yachay_native.node)',
  ].join('\n'));
}

let cached: NativeKernels | undefined;

/** The process-wide kernels; loaded once (the addon picks its ISA once, too). */
export function loadNative(): NativeKernels {
  cached ??= loadNativeFrom(nativeCandidates());
  return cached;
}
