import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Floors } from '../../config/schema.js';
import type { NativeKernels } from '../../analysis/native.js';
import { YachayError } from '../../errors.js';
import { run } from '../../media/run.js';
import { probe } from '../../optimize/probe.js';
import { analyse } from '../../optimize/analyse.js';
import { findShots } from '../../optimize/shots.js';
import type { Shot, ShotClass } from '../../optimize/shots.js';
import { CLASS_SETTINGS, baseFpsOf, outputSize } from '../../optimize/plan.js';
import type { Plan } from '../../optimize/plan.js';
import { encodeArgs } from '../../optimize/encode.js';
import type { Progress } from '../../optimize/progress.js';
import { grabFrame, ocrFrame, wordAccuracy, wordCount } from '../../quality/ocr.js';
import type { OcrLang } from '../../quality/ocr.js';
import { ssimWindow } from '../../quality/ssim.js';
import { featureVector } from './features.js';
import type { SampleOptions } from '../../sample/lecture.js';
import type { SegmentKind } from '../../sample/content.js';

/**
 * The rate model's training data: every shot of a lecture encoded alone, exactly as the
 * lowest rendition would code it (same x264 arguments, the class's frame rate), at a ladder
 * of quantisers around the class default, each measured with the check verify.ts runs on
 * that class. One row per (shot, QP).
 */
export type Metric = 'ocr' | 'ssim';

export interface EncodeRow {
  /** lecture the shot comes from: the unit of the held-out split */
  lesson: string;
  source?: string | undefined;
  shot: number;
  cls: ShotClass;
  features: number[];
  settings: { qp: number; fps: number; width: number; height: number };
  quality: { metric: Metric; value: number; floor: number };
  bytes: number;
  /** when the box recorded it (encodes.created_at); absent in the shipped JSONL */
  at?: number | undefined;
  /** the row's weight in training (1 when absent): person labels raise it (labels.ts) */
  weight?: number | undefined;
}

export interface SweepOptions {
  lesson: string;
  kernels: NativeKernels;
  floors: Floors;
  lang: OcrLang;
  preset?: string;
  threads?: number;
  analysisFps?: number;
  /** rendition size; default: what makePlan would pick for this source */
  size?: { width: number; height: number } | undefined;
  /** QP offsets from the class default (the range pickQp may choose from) */
  offsets?: number[];
  /**
   * frame rates to code each class at (default: the class's own rate only). Each rate gets the
   * whole QP ladder, so the model learns how quality trades between frames and quantiser.
   */
  rates?: Partial<Record<ShotClass, number[]>> | undefined;
  /** sweep only these classes (default: all): an fps sweep only needs the moving ones */
  classes?: ShotClass[] | undefined;
  /** OCR frames per text shot */
  ocrFrames?: number;
  progress?: Progress | undefined;
  /** this file's share of the progress bar (collect sweeps several lectures on one bar) */
  progressWeight?: number;
  signal?: AbortSignal | undefined;
}

/**
 * pickQp chooses within −6 … +9 of the class default; the sweep also codes +12 and +15 so the
 * model sees where quality falls off beyond the range instead of guessing at its edge.
 */
export const DEFAULT_OFFSETS = [-6, -3, 0, 3, 6, 9, 12, 15];
/** verify.ts skips shorter text shots and picture shots under 1 s; so do we */
const MIN_TEXT_SEC = 1.5;
const MIN_PICTURE_SEC = 1;
const SSIM_WINDOW = 12;
const OCR_W = 1280;
const OCR_H = 720;

function aborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new YachayError('YCH_ERR_ABORTED', 'sweep stopped: aborted');
}

export function defaultQp(cls: ShotClass): number {
  return CLASS_SETTINGS[cls][0].qp;
}

/** The rates a class is swept at: the asked ones (else the class's own), none above the source's. */
export function sweepRates(cls: ShotClass, baseFps: number, rates?: Partial<Record<ShotClass, number[]>>): number[] {
  const asked = rates?.[cls] ?? [CLASS_SETTINGS[cls][0].fps];
  return [...new Set(asked.map((f) => Math.min(f, baseFps)))].sort((a, b) => a - b);
}

export function floorOf(cls: ShotClass, floors: Floors): { metric: Metric; floor: number } {
  if (cls === 'slide' || cls === 'board') return { metric: 'ocr', floor: floors.ocrRatio };
  return { metric: 'ssim', floor: cls === 'motion' ? floors.ssimMotion : floors.ssimTalkingHead };
}

/**
 * Where text is read: two spread frames on a slide; on a board the writing grows, so one frame
 * once most of it is there and one near the end (as verify.ts reads the end of a board).
 */
export function ocrTimes(cls: ShotClass, dur: number, n: number): number[] {
  if (cls === 'board') return n <= 1 ? [Math.max(0, dur - 0.7)] : [0.55 * dur, Math.max(0, dur - 0.7)];
  return Array.from({ length: n }, (_, i) => ((i + 1) * dur) / (n + 1));
}

/** The one-shot plan encodeArgs() turns into the same x264 command the lowest rendition gets. */
export function shotPlan(dur: number, baseFps: number, width: number, height: number, fps: number, qp: number): Plan {
  return {
    version: 1, input: 'shot', duration: dur, baseFps, segmentSeconds: 6,
    shots: [{ index: 0, start: 0, end: dur, cls: 'slide', audio: 'none', reason: 'rate sweep' }],
    keyframes: [0],
    renditions: [{ id: 'v0', label: 'sweep', effort: 'max', width, height, shots: [{ fps, qp }] }],
    audio: undefined,
  };
}

async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) if (!f.endsWith('.m3u8')) n += (await stat(join(dir, f))).size;
  return n;
}

/** Text kept, weighted by the words on each reference frame (verify.ts weighs its checks the same way). */
async function measureText(cand: string, refText: Map<number, string>, work: string, opts: SweepOptions): Promise<number | undefined> {
  let words = 0; let kept = 0;
  for (const [at, text] of refText) {
    const n = wordCount(text);
    if (n < 3) continue; // nothing legible on the source either
    const png = join(work, `c-${at.toFixed(2)}.png`);
    await grabFrame(cand, at, png, { width: OCR_W, height: OCR_H, signal: opts.signal });
    kept += wordAccuracy(text, await ocrFrame(png, opts.lang, opts.signal)) * n;
    words += n;
  }
  return words > 0 ? kept / words : undefined;
}

export async function sweepFile(input: string, opts: SweepOptions): Promise<EncodeRow[]> {
  const info = await probe(input, opts.signal);
  if (!info.video) throw new YachayError('YCH_ERR_INPUT_NOT_MEDIA', `${input} has no video to sweep`);
  const an = await analyse(info, opts.kernels, opts.analysisFps ?? 5, { signal: opts.signal });
  const shots = findShots(an, info.duration);
  return sweepShots(input, shots, opts, {
    baseFps: baseFpsOf(info),
    size: opts.size ?? outputSize(info.video.displayWidth, info.video.displayHeight),
  });
}

export async function sweepShots(input: string, shots: Shot[], opts: SweepOptions,
  media: { baseFps: number; size: { width: number; height: number } }): Promise<EncodeRow[]> {
  const offsets = opts.offsets ?? DEFAULT_OFFSETS;
  const { width, height } = media.size;
  const usable = shots.filter((s) => s.end - s.start >= (s.cls === 'slide' || s.cls === 'board' ? MIN_TEXT_SEC : MIN_PICTURE_SEC))
    .filter((s) => !opts.classes || opts.classes.includes(s.cls));
  const ratesOf = (cls: ShotClass): number[] => sweepRates(cls, media.baseFps, opts.rates);
  const total = usable.reduce((n, s) => n + ratesOf(s.cls).length * offsets.length, 0);
  let done = 0;
  opts.progress?.stage(`sweep ${opts.lesson}`, opts.progressWeight ?? 1);
  const rows: EncodeRow[] = [];
  const work = await mkdtemp(join(tmpdir(), 'yachay-sweep-'));
  try {
    for (const shot of usable) {
      aborted(opts.signal);
      const dur = shot.end - shot.start;
      const shotTotal = ratesOf(shot.cls).length * offsets.length;
      const { metric, floor } = floorOf(shot.cls, opts.floors);
      // the shot cut out losslessly once: every QP is encoded from it and compared with it, so
      // source and candidate share one timeline starting at the shot's first frame
      const ref = join(work, `ref-${shot.index}.mkv`);
      await run('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-y', '-ss', shot.start.toFixed(6), '-t', dur.toFixed(6),
        '-i', input, '-map', '0:v:0', '-an', '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', '-pix_fmt', 'yuv420p', ref], { signal: opts.signal });
      const refText = new Map<number, string>();
      if (metric === 'ocr') {
        for (const at of ocrTimes(shot.cls, dur, opts.ocrFrames ?? 2)) {
          const png = join(work, `r-${at.toFixed(2)}.png`);
          await grabFrame(ref, at, png, { width: OCR_W, height: OCR_H, signal: opts.signal });
          refText.set(at, await ocrFrame(png, opts.lang, opts.signal));
        }
        if (![...refText.values()].some((t) => wordCount(t) >= 3)) {
          // nothing legible on the source: no QP can lose anything, no row to learn from
          done += shotTotal;
          opts.progress?.update(done / total);
          continue;
        }
      }
      for (const fps of ratesOf(shot.cls)) for (const off of offsets) {
        aborted(opts.signal);
        const qp = defaultQp(shot.cls) + off;
        const out = join(work, `enc-${shot.index}-${fps}-${qp}`);
        await rm(out, { recursive: true, force: true });
        await mkdir(join(out, 'v0'), { recursive: true });
        const plan = shotPlan(dur, media.baseFps, width, height, fps, qp);
        await run('ffmpeg', encodeArgs(plan, ref, out, { preset: opts.preset ?? 'medium', threads: opts.threads ?? 2, audio: false }), { signal: opts.signal });
        const cand = join(out, 'v0', 'index.m3u8');
        let value: number | undefined;
        if (metric === 'ocr') {
          value = await measureText(cand, refText, work, opts);
        } else {
          const win = Math.min(SSIM_WINDOW, dur - 0.4);
          const at = 0.2 + (dur - 0.4 - win) / 2;
          value = (await ssimWindow(ref, cand, { start: at, duration: win, width, height, fps: media.baseFps, signal: opts.signal })).all;
        }
        const bytes = await dirBytes(join(out, 'v0'));
        await rm(out, { recursive: true, force: true });
        done++;
        opts.progress?.update(done / total);
        if (value === undefined) continue; // no legible text on this shot: nothing to learn
        rows.push({
          lesson: opts.lesson, source: input, shot: shot.index, cls: shot.cls,
          features: featureVector(shot, { width, height, fps }, qp),
          settings: { qp, fps, width, height },
          quality: { metric, value, floor },
          bytes,
        });
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

/** mulberry32: a tiny seeded generator, so a seed names the same lecture on every machine. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The sample generator has no seed of its own (same slides, same board in every lecture of a
 * language), so a training seed varies what it can: the order of the middle segments, the
 * length (±15 %), hence every shot's duration and statistics, and the rendition size (a
 * quarter-HD or a 540p source: seeds ≡ 0, 1 mod 4 code at 960x540).
 */
export function lectureVariant(seed: number, lang: 'es' | 'en', seconds: number): { sample: SampleOptions; size: { width: number; height: number } } {
  const rnd = seeded(seed);
  const middle: SegmentKind[] = ['slide', 'talking_head', 'board', 'slide', 'motion'];
  for (let i = middle.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [middle[i], middle[j]] = [middle[j]!, middle[i]!];
  }
  const secs = Math.round(seconds * (0.85 + 0.3 * rnd()));
  const size = seed % 4 === 0 || seed % 4 === 1 ? { width: 960, height: 540 } : { width: 1280, height: 720 };
  return { sample: { seconds: secs, lang, kinds: ['title', ...middle, 'summary'] }, size };
}
