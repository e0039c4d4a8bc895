import { run } from '../media/run.js';
import type { Shot } from './shots.js';

/**
 * The analysis sees the lesson at a few frames a second (5 by default), so a cut it finds lies
 * anywhere between two of its frames, up to 0.2 s from the time it reports, before or after
 * (ffmpeg's `fps` filter takes the source frame nearest each slot). The encoder puts a
 * keyframe on each shot's start and keeps the frame just before it, so a cut a few frames off
 * is paid twice: on the bench lectures the frame kept "before" a cut into the Game of Life was
 * already the new picture, coded as a 55 KB P-frame at the slide's quantiser, and a slide's
 * keyframe was the old slide with the new one coded as a P-frame a second later.
 *
 * Each cut is looked at again in the source at its own frame rate, in a window around the time
 * the analysis gave: a few small grey frames decoded after a seek, and the largest jump between
 * neighbours is the cut. A window with no single clear jump (a fade, a dissolve, motion on both
 * sides) keeps the analysis' time.
 */
export const REFINE_W = 64;
export const REFINE_H = 36;
/** the jump must be this large (mean abs luma, 0..255) ... */
export const REFINE_MIN_JUMP = 8;
/** ... and this many times every other jump in the window */
export const REFINE_RATIO = 2.5;
/** a seek decodes from the keyframe before it: two at a time is the box's two cores */
const PARALLEL = 2;

export interface RefineOptions {
  /** the analysis frame rate the cuts were found at */
  analysisFps: number;
  /** the rate the encoder normalises the source to (plan.baseFps): the grid of frame times */
  baseFps: number;
  signal?: AbortSignal | undefined;
}

/** Where in `jumps` (mean abs differences between neighbouring frames) a single clear cut is, or -1. */
export function clearJump(jumps: readonly number[]): number {
  let best = -1;
  for (let k = 0; k < jumps.length; k++) if (best < 0 || jumps[k]! > jumps[best]!) best = k;
  if (best < 0 || jumps[best]! < REFINE_MIN_JUMP) return -1;
  for (let k = 0; k < jumps.length; k++) if (k !== best && jumps[k]! * REFINE_RATIO > jumps[best]!) return -1;
  return best;
}

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

/** The source frame time (on the 1/baseFps grid) where the cut near `at` is, or undefined. */
export async function refineCut(input: string, at: number, opts: RefineOptions): Promise<number | undefined> {
  const F = opts.baseFps;
  // from two frames before the previous analysis frame to two frames after this one
  const first = Math.max(0, Math.round((at - 1 / opts.analysisFps) * F) - 2);
  const count = Math.round(F / opts.analysisFps) + 5;
  const frameBytes = REFINE_W * REFINE_H;
  const chunks: Buffer[] = [];
  // one decoder thread: two windows are decoded at a time, and a short seek's worth of frames
  // gains nothing from frame threads but their start-up
  await run('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-skip_loop_filter', 'all', '-threads', '1',
    '-ss', (first / F).toFixed(6), '-i', input, '-map', '0:v:0', '-an', '-sn', '-frames:v', String(count),
    '-vf', `fps=${F},scale=${REFINE_W}:${REFINE_H}:flags=area,format=gray`, '-f', 'rawvideo', 'pipe:1'],
  { signal: opts.signal, onStdout: (c) => chunks.push(c) });
  const raw = Buffer.concat(chunks);
  const n = Math.floor(raw.length / frameBytes);
  if (n < 2) return undefined;
  const frames = Array.from({ length: n }, (_, i) => raw.subarray(i * frameBytes, (i + 1) * frameBytes));
  const jumps = frames.slice(1).map((f, k) => meanAbsDiff(frames[k]!, f));
  const k = clearJump(jumps);
  return k < 0 ? undefined : Math.round(((first + k + 1) / F) * 1000) / 1000;
}

/**
 * The shots with each start (and the end of the shot before it) moved onto the source frame
 * where the picture changes. `moved` counts the starts that changed.
 */
export async function refineCuts(input: string, shots: readonly Shot[], opts: RefineOptions): Promise<{ shots: Shot[]; moved: number }> {
  const out = shots.map((s) => ({ ...s }));
  const found: Array<number | undefined> = new Array(shots.length).fill(undefined);
  let next = 1;
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    while (next < shots.length) {
      const i = next++;
      found[i] = await refineCut(input, shots[i]!.start, opts);
    }
  }));
  let moved = 0;
  for (let i = 1; i < out.length; i++) {
    const t = found[i];
    // never past a neighbour's own start: a cut moves by a fraction of a second, not a shot
    if (t === undefined || Math.abs(t - out[i]!.start) < 1e-3 || t <= out[i - 1]!.start || t >= out[i]!.end) continue;
    out[i]!.start = t;
    out[i - 1]!.end = t;
    moved++;
  }
  return { shots: out, moved };
}
