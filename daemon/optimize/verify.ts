import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Floors } from '../config/schema.js';
import type { Plan } from './plan.js';
import type { ShotClass } from './shots.js';
import { grabFrame, ocrFrame, wordCount, wordAccuracy } from '../quality/ocr.js';
import { roiPixels } from '../models/roi.js';
import { ssimWindow } from '../quality/ssim.js';
import { decodePcm } from '../quality/audio.js';
import { STOI_FS, alignOffset, stoiOverIntervals } from '../quality/stoi.js';

/**
 * Measures the lowest rendition against the source with the project's own tools before
 * anything is published: OCR on slides and boards, SSIM on faces and motion, STOI on speech.
 */
export interface Check {
  kind: 'ocr' | 'ssim' | 'stoi';
  shot?: number | undefined;
  cls?: ShotClass | undefined;
  at: number;
  value: number;
  floor: number;
  ok: boolean;
  /** OCR: words read on the source frame (the weight of this check); SSIM: seconds measured */
  weight: number;
  detail?: string | undefined;
}

export interface VerifyReport {
  rendition: string;
  checks: Check[];
  ocrRatio?: number | undefined;
  stoi?: number | undefined;
  ssim: Partial<Record<ShotClass, number>>;
  /** shot classes that need more bits, and whether audio does */
  failedClasses: ShotClass[];
  audioFailed: boolean;
  skipped: string[];
}

export interface VerifyOptions {
  floors: Floors & { stoi: number };
  signal?: AbortSignal | undefined;
  lang: 'spa' | 'eng' | 'spa+eng';
  speech: Array<{ start: number; end: number }>;
  /** at most this many slide/board frames go through OCR (each costs ~1 s on a Pi) */
  maxOcr?: number;
  maxSsim?: number;
}

const OCR_W = 1280;
const OCR_H = 720;
/** Whole shots up to this long: a 3 s window in the middle of a zoom read 0.78 where the full shot read 0.75. */
const SSIM_WINDOW = 12;

function pickSpread<T>(xs: T[], n: number): T[] {
  if (xs.length <= n) return xs;
  return Array.from({ length: n }, (_, i) => xs[Math.floor((i * xs.length) / n)]!);
}

async function pool<T, R>(items: T[], width: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  }));
  return out;
}

type Span = Plan['shots'][number];

/** Slide text: the middle of each slide, the end of each board (when the writing is complete). */
async function checkText(plan: Plan, source: string, candidate: string, work: string, opts: VerifyOptions): Promise<Check[]> {
  const textShots = plan.shots.filter((s) => (s.cls === 'slide' || s.cls === 'board') && s.end - s.start >= 1.5);
  const results = await pool(pickSpread(textShots, opts.maxOcr ?? 8), 2, async (s: Span) => {
    const at = s.cls === 'board' ? Math.max(s.start, s.end - 1) : (s.start + s.end) / 2;
    const a = join(work, `src-${s.index}.png`); const b = join(work, `out-${s.index}.png`);
    await grabFrame(source, at, a, { width: OCR_W, height: OCR_H, signal: opts.signal });
    await grabFrame(candidate, at, b, { width: OCR_W, height: OCR_H, signal: opts.signal });
    const [ta, tb] = await Promise.all([ocrFrame(a, opts.lang, opts.signal), ocrFrame(b, opts.lang, opts.signal)]);
    return { s, at, words: wordCount(ta), acc: wordAccuracy(ta, tb) };
  });
  return results.filter((o) => o.words >= 3) // nothing legible on the source either
    .map((o) => ({ kind: 'ocr' as const, shot: o.s.index, cls: o.s.cls, at: o.at, value: o.acc, floor: opts.floors.ocrRatio, ok: o.acc >= opts.floors.ocrRatio, weight: o.words, detail: `${o.words} words on source` }));
}

/** Pictures: faces and motion, over whole shots (up to SSIM_WINDOW s), one after the other. */
async function checkPictures(plan: Plan, source: string, candidate: string, opts: VerifyOptions): Promise<Check[]> {
  const r0 = plan.renditions[0]!;
  const shots = pickSpread(plan.shots.filter((s) => (s.cls === 'talking_head' || s.cls === 'motion') && s.end - s.start >= 1), opts.maxSsim ?? 6);
  const out: Check[] = [];
  for (const s of shots) {
    // skip the first frames: the cut itself is coded at the previous shot's settings
    const dur = Math.min(SSIM_WINDOW, s.end - s.start - 0.4);
    const at = s.start + 0.2 + (s.end - s.start - 0.4 - dur) / 2;
    const win = { start: at, duration: dur, width: r0.width, height: r0.height, fps: plan.baseFps, signal: opts.signal };
    const floor = s.cls === 'motion' ? opts.floors.ssimMotion : opts.floors.ssimTalkingHead;
    // with a region of interest the floor is the teacher's region: outside it the encoder was
    // told to save bits, and the frame's figure (same pass) is kept as information
    const roi = s.roi ? roiPixels(s.roi, r0.width, r0.height) : undefined;
    const m = await ssimWindow(source, candidate, { ...win, crop: roi });
    if (roi) {
      out.push({ kind: 'ssim', shot: s.index, cls: s.cls, at, value: m.all, floor, ok: m.all >= floor, weight: dur,
        detail: `${dur.toFixed(1)} s, region ${roi.w}x${roi.h}+${roi.x}+${roi.y}, frame ${m.frame?.all.toFixed(4) ?? '?'}` });
      continue;
    }
    out.push({ kind: 'ssim', shot: s.index, cls: s.cls, at, value: m.all, floor, ok: m.all >= floor, weight: dur, detail: `${dur.toFixed(1)} s` });
  }
  return out;
}

/** Speech: the Opus track (the lowest rendition's audio) over the speech the analysis found. */
async function checkSpeech(source: string, pkgDir: string, opts: VerifyOptions): Promise<Check> {
  const [src, out] = await Promise.all([
    decodePcm(source, { sampleRate: STOI_FS, signal: opts.signal }),
    decodePcm(join(pkgDir, 'a-opus', 'index.m3u8'), { sampleRate: STOI_FS, signal: opts.signal }),
  ]);
  const lag = alignOffset(src, out, STOI_FS, 0.5);
  const aligned = lag >= 0 ? out.subarray(lag) : concatSilence(-lag, out);
  const value = stoiOverIntervals(src, aligned, STOI_FS, opts.speech);
  return { kind: 'stoi', at: 0, value, floor: opts.floors.stoi, ok: value >= opts.floors.stoi, weight: 1, detail: `lag ${lag} samples at ${STOI_FS} Hz` };
}

export async function verify(plan: Plan, source: string, pkgDir: string, opts: VerifyOptions): Promise<VerifyReport> {
  const r0 = plan.renditions[0];
  const report: VerifyReport = { rendition: r0?.id ?? 'audio', checks: [], ssim: {}, failedClasses: [], audioFailed: false, skipped: [] };
  const work = await mkdtemp(join(tmpdir(), 'yachay-verify-'));
  try {
    const candidate = r0 ? join(pkgDir, r0.id, 'index.m3u8') : '';
    const speech = plan.audio && opts.speech.length > 0;
    // tesseract runs beside the SSIM and speech measures: three processes on two cores
    const [text, pictures, stoiCheck] = await Promise.all([
      r0 ? checkText(plan, source, candidate, work, opts) : Promise.resolve([]),
      r0 ? checkPictures(plan, source, candidate, opts) : Promise.resolve([]),
      speech ? checkSpeech(source, pkgDir, opts) : Promise.resolve(undefined),
    ]);
    report.checks.push(...text, ...pictures);
    const words = text.reduce((n, c) => n + c.weight, 0);
    if (words > 0) {
      report.ocrRatio = text.reduce((n, c) => n + c.value * c.weight, 0) / words;
      if (report.ocrRatio < opts.floors.ocrRatio) {
        for (const c of text) if (!c.ok && c.cls && !report.failedClasses.includes(c.cls)) report.failedClasses.push(c.cls);
      }
    } else if (plan.shots.some((s) => s.cls === 'slide' || s.cls === 'board')) {
      report.skipped.push('ocr: no legible text found on the source frames');
    }
    const sums: Partial<Record<ShotClass, { v: number; n: number }>> = {};
    for (const c of pictures) {
      const acc = (sums[c.cls!] ??= { v: 0, n: 0 });
      acc.v += c.value * c.weight; acc.n += c.weight;
    }
    for (const [cls, acc] of Object.entries(sums) as Array<[ShotClass, { v: number; n: number }]>) {
      report.ssim[cls] = acc.v / acc.n;
      const floor = cls === 'motion' ? opts.floors.ssimMotion : opts.floors.ssimTalkingHead;
      if (report.ssim[cls]! < floor && !report.failedClasses.includes(cls)) report.failedClasses.push(cls);
    }
    if (stoiCheck) {
      report.checks.push(stoiCheck);
      report.stoi = stoiCheck.value;
      report.audioFailed = !stoiCheck.ok;
    } else if (plan.audio) {
      report.skipped.push('stoi: no speech found');
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return report;
}

function concatSilence(n: number, x: Float32Array): Float32Array {
  const out = new Float32Array(n + x.length);
  out.set(x, n);
  return out;
}
