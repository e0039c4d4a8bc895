import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Floors } from '../config/schema.js';
import type { Plan } from './plan.js';
import type { ShotClass } from './shots.js';
import { grabFrame, ocrFrame, wordCount, wordRecall } from '../quality/ocr.js';
import { roiPixels } from '../media/roi.js';
import { ssimWindow } from '../quality/ssim.js';
import { decodePcmToFile } from '../quality/audio.js';
import { STOI_FS } from '../quality/stoi.js';
import { stoiInWorker } from '../quality/stoi-worker.js';
import { heldFloor, pictureCeiling, textCeiling } from './ceiling.js';

/**
 * Measures the lowest rendition against the source with the project's own tools before
 * anything is published: OCR on slides and boards, SSIM on faces and motion, STOI on speech.
 * Every checked shot holds its own floor (a class average let single shots through under it),
 * lowered to what the recording allows when the shot misses (ceiling.ts).
 */
export interface Check {
  kind: 'ocr' | 'ssim' | 'stoi';
  shot?: number | undefined;
  cls?: ShotClass | undefined;
  at: number;
  value: number;
  /** the floor this check is held to: min(configured floor, ceiling − CEILING_MARGIN) */
  floor: number;
  ok: boolean;
  /** OCR: words read on the source frame (the weight of this check); SSIM: seconds measured */
  weight: number;
  detail?: string | undefined;
  /** the configured floor, when the ceiling lowered it */
  nominalFloor?: number | undefined;
  /** what the recording allows (measured for shots that missed) */
  ceiling?: number | undefined;
}

/** What the teacher is told: which part of the lesson may look or sound worse than promised. */
export type MissKind = 'text' | 'picture' | 'speech';
export interface Miss {
  /** shot index; absent for speech, which is measured over the whole lesson */
  shot?: number | undefined;
  start: number;
  end: number;
  kind: MissKind;
  value: number;
  floor: number;
  ceiling?: number | undefined;
}

export interface VerifyReport {
  rendition: string;
  checks: Check[];
  /** per shot and for speech, the checks under their floor */
  misses: Miss[];
  /** class summaries, kept as information: the floors hold per shot */
  ocrRatio?: number | undefined;
  stoi?: number | undefined;
  ssim: Partial<Record<ShotClass, number>>;
  /** shot classes with at least one missed shot, and whether audio missed */
  failedClasses: ShotClass[];
  audioFailed: boolean;
  skipped: string[];
}

export interface VerifyOptions {
  floors: Floors & { stoi: number };
  signal?: AbortSignal | undefined;
  lang: 'spa' | 'eng' | 'spa+eng';
  speech: Array<{ start: number; end: number }>;
  /** at most this many slide/board frames go through OCR (each costs ~1 s on a Pi); default samplesFor() */
  maxOcr?: number;
  maxSsim?: number;
  /**
   * ceilings measured on earlier attempts, by shot index: the source does not change between
   * attempts, so each is measured once; verify adds the ones it measures
   */
  ceilings?: Map<number, number> | undefined;
  /**
   * A re-encode that replaced only some segments: shots outside `changed` (source seconds)
   * are byte for byte what was measured before, so their checks are taken from `checks`
   * instead of measured again; speech too unless the audio was re-encoded.
   */
  reuse?: { checks: readonly Check[]; changed: ReadonlyArray<{ start: number; end: number }>; audio: boolean } | undefined;
}

function remeasure(s: Span, opts: VerifyOptions): boolean {
  return !opts.reuse || opts.reuse.changed.some((c) => s.start < c.end && s.end > c.start);
}

/**
 * How many shots of a kind are checked: one per SAMPLE_EVERY_S of lesson, never fewer than the
 * short-lesson count (8 OCR frames, 6 SSIM windows), at most the cap. On a 60-minute lecture
 * that is 24 OCR frames (48 tesseract reads, ~1 s each on a Pi) and 20 SSIM windows of at most
 * 12 s (4 of the 60 minutes decoded twice), against an encode that decodes all 60 minutes and
 * codes two renditions: verify stays around a tenth of the encode.
 */
export const SAMPLE_EVERY_S = 120;
export const SAMPLES = { ocr: { min: 8, max: 24 }, ssim: { min: 6, max: 20 } } as const;
export function samplesFor(durationS: number, kind: keyof typeof SAMPLES): number {
  const { min, max } = SAMPLES[kind];
  return Math.min(max, Math.max(min, Math.ceil(durationS / SAMPLE_EVERY_S)));
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
  const r0 = plan.renditions[0]!;
  const textShots = plan.shots.filter((s) => (s.cls === 'slide' || s.cls === 'board') && s.end - s.start >= 1.5);
  const ceilings = opts.ceilings ?? new Map<number, number>();
  const results = await pool(pickSpread(textShots, opts.maxOcr ?? samplesFor(plan.duration, 'ocr')).filter((s) => remeasure(s, opts)), 2, async (s: Span) => {
    const at = s.cls === 'board' ? Math.max(s.start, s.end - 1) : (s.start + s.end) / 2;
    const a = join(work, `src-${s.index}.png`); const b = join(work, `out-${s.index}.png`);
    await grabFrame(source, at, a, { width: OCR_W, height: OCR_H, signal: opts.signal });
    await grabFrame(candidate, at, b, { width: OCR_W, height: OCR_H, signal: opts.signal });
    const [ta, tb] = await Promise.all([ocrFrame(a, opts.lang, opts.signal), ocrFrame(b, opts.lang, opts.signal)]);
    const words = wordCount(ta); const acc = wordRecall(ta, tb);
    let ceiling = ceilings.get(s.index);
    if (ceiling === undefined && words >= 3 && acc < opts.floors.ocrRatio) {
      // the rendition shows the frame kept at the start of this 1/fps slot (a pointer moving over
      // a page is elsewhere by then): a perfect encoder at this frame rate shows that frame
      const fps = r0.shots[plan.shots.indexOf(s)]?.fps ?? plan.baseFps;
      const shown = Math.max(s.start, Math.floor(at * fps + 1e-6) / fps);
      ceiling = await textCeiling(source, { at: shown, width: r0.width, height: r0.height, ocrWidth: OCR_W, ocrHeight: OCR_H, lang: opts.lang, sourceText: ta }, work, opts.signal);
      ceilings.set(s.index, ceiling);
    }
    return { s, at, words, acc, ceiling };
  });
  return results.filter((o) => o.words >= 3) // nothing legible on the source either
    .map((o) => held({ kind: 'ocr', shot: o.s.index, cls: o.s.cls, at: o.at, value: o.acc, floor: opts.floors.ocrRatio, ok: true, weight: o.words, detail: `${o.words} words on source` }, o.ceiling));
}

/** The check held to min(floor, ceiling − margin); the configured floor kept beside it when lowered. */
function held(c: Check, ceiling: number | undefined): Check {
  const floor = heldFloor(c.floor, ceiling);
  return { ...c, floor, ok: c.value >= floor, ceiling, nominalFloor: floor < c.floor ? c.floor : undefined };
}

/** Pictures: faces and motion, over whole shots (up to SSIM_WINDOW s), one after the other. */
async function checkPictures(plan: Plan, source: string, candidate: string, work: string, opts: VerifyOptions): Promise<Check[]> {
  const r0 = plan.renditions[0]!;
  const ceilings = opts.ceilings ?? new Map<number, number>();
  const shots = pickSpread(plan.shots.filter((s) => (s.cls === 'talking_head' || s.cls === 'motion') && s.end - s.start >= 1), opts.maxSsim ?? samplesFor(plan.duration, 'ssim'));
  const out: Check[] = [];
  for (const s of shots.filter((x) => remeasure(x, opts))) {
    // skip the first frames: the cut itself is coded at the previous shot's settings
    const dur = Math.min(SSIM_WINDOW, s.end - s.start - 0.4);
    const at = s.start + 0.2 + (s.end - s.start - 0.4 - dur) / 2;
    const win = { start: at, duration: dur, width: r0.width, height: r0.height, fps: plan.baseFps, signal: opts.signal };
    const floor = s.cls === 'motion' ? opts.floors.ssimMotion : opts.floors.ssimTalkingHead;
    // with a region of interest the floor is the teacher's region: outside it the encoder was
    // told to save bits, and the frame's figure (same pass) is kept as information
    const roi = s.roi ? roiPixels(s.roi, r0.width, r0.height) : undefined;
    const m = await ssimWindow(source, candidate, { ...win, crop: roi });
    let ceiling = ceilings.get(s.index);
    if (ceiling === undefined && m.all < floor) {
      const i = plan.shots.indexOf(s);
      ceiling = await pictureCeiling(source, { start: at, duration: dur, width: r0.width, height: r0.height, baseFps: plan.baseFps, fps: r0.shots[i]!.fps, crop: roi }, work, opts.signal);
      ceilings.set(s.index, ceiling);
    }
    const detail = roi
      ? `${dur.toFixed(1)} s, region ${roi.w}x${roi.h}+${roi.x}+${roi.y}, frame ${m.frame?.all.toFixed(4) ?? '?'}`
      : `${dur.toFixed(1)} s`;
    out.push(held({ kind: 'ssim', shot: s.index, cls: s.cls, at, value: m.all, floor, ok: true, weight: dur, detail }, ceiling));
  }
  return out;
}

/** Speech: the Opus track (the lowest rendition's audio) over the speech the analysis found. */
async function checkSpeech(source: string, pkgDir: string, opts: VerifyOptions): Promise<Check> {
  // both tracks go to files and a worker scores them window by window: a whole lesson's
  // samples never sit in this process, and the event loop keeps serving while it works
  const dir = await mkdtemp(join(tmpdir(), 'yachay-stoi-'));
  try {
    const [src, out] = await Promise.all([
      decodePcmToFile(source, join(dir, 'source.pcm'), { sampleRate: STOI_FS, signal: opts.signal }),
      decodePcmToFile(join(pkgDir, 'a-opus', 'index.m3u8'), join(dir, 'opus.pcm'), { sampleRate: STOI_FS, signal: opts.signal }),
    ]);
    const { value, lag } = await stoiInWorker({ clean: src, degraded: out, intervals: opts.speech, maxLagSec: 0.5 }, opts.signal);
    return { kind: 'stoi', at: 0, value, floor: opts.floors.stoi, ok: value >= opts.floors.stoi, weight: 1, detail: `lag ${lag} samples at ${STOI_FS} Hz` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function verify(plan: Plan, source: string, pkgDir: string, opts: VerifyOptions): Promise<VerifyReport> {
  const r0 = plan.renditions[0];
  const report: VerifyReport = { rendition: r0?.id ?? 'audio', checks: [], misses: [], ssim: {}, failedClasses: [], audioFailed: false, skipped: [] };
  const work = await mkdtemp(join(tmpdir(), 'yachay-verify-'));
  try {
    const candidate = r0 ? join(pkgDir, r0.id, 'index.m3u8') : '';
    const speech = plan.audio && opts.speech.length > 0;
    // tesseract runs beside the SSIM and speech measures: three processes on two cores
    const [text, pictures, stoiCheck] = await Promise.all([
      r0 ? checkText(plan, source, candidate, work, opts) : Promise.resolve([]),
      r0 ? checkPictures(plan, source, candidate, work, opts) : Promise.resolve([]),
      !speech ? Promise.resolve(undefined)
        : opts.reuse && !opts.reuse.audio ? Promise.resolve(opts.reuse.checks.find((c) => c.kind === 'stoi'))
          : checkSpeech(source, pkgDir, opts),
    ]);
    if (opts.reuse) {
      // the shots left as they were keep the checks they had
      const kept = opts.reuse.checks.filter((c) => c.kind !== 'stoi' && !plan.shots.some((s) => s.index === c.shot && remeasure(s, opts)));
      text.push(...kept.filter((c) => c.kind === 'ocr'));
      pictures.push(...kept.filter((c) => c.kind === 'ssim'));
    }
    report.checks.push(...text, ...pictures);
    const words = text.reduce((n, c) => n + c.weight, 0);
    if (words > 0) {
      report.ocrRatio = text.reduce((n, c) => n + c.value * c.weight, 0) / words;
    } else if (plan.shots.some((s) => s.cls === 'slide' || s.cls === 'board')) {
      report.skipped.push('ocr: no legible text found on the source frames');
    }
    const sums: Partial<Record<ShotClass, { v: number; n: number }>> = {};
    for (const c of pictures) {
      const acc = (sums[c.cls!] ??= { v: 0, n: 0 });
      acc.v += c.value * c.weight; acc.n += c.weight;
    }
    for (const [cls, acc] of Object.entries(sums) as Array<[ShotClass, { v: number; n: number }]>) report.ssim[cls] = acc.v / acc.n;
    if (stoiCheck) {
      report.checks.push(stoiCheck);
      report.stoi = stoiCheck.value;
      report.audioFailed = !stoiCheck.ok;
    } else if (plan.audio) {
      report.skipped.push('stoi: no speech found');
    }
    report.misses = missesOf(plan, report.checks, opts.speech);
    for (const c of report.checks) if (!c.ok && c.cls && !report.failedClasses.includes(c.cls)) report.failedClasses.push(c.cls);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return report;
}

/** The checks under their floor as the teacher reads them: which stretch of the lesson, and what. */
export function missesOf(plan: Pick<Plan, 'shots'>, checks: readonly Check[], speech: ReadonlyArray<{ start: number; end: number }>): Miss[] {
  const out: Miss[] = [];
  for (const c of checks) {
    if (c.ok) continue;
    if (c.kind === 'stoi') {
      const start = speech.length ? Math.min(...speech.map((s) => s.start)) : 0;
      const end = speech.length ? Math.max(...speech.map((s) => s.end)) : 0;
      out.push({ start, end, kind: 'speech', value: c.value, floor: c.floor });
      continue;
    }
    const s = plan.shots.find((x) => x.index === c.shot);
    if (!s) continue;
    out.push({ shot: s.index, start: s.start, end: s.end, kind: c.kind === 'ocr' ? 'text' : 'picture', value: c.value, floor: c.floor, ceiling: c.ceiling });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** How far an attempt is from its floors, summed over its misses (relative to each floor): 0 when it meets them all. */
export function shortfall(misses: readonly Miss[]): number {
  return misses.reduce((n, m) => n + Math.max(0, m.floor - m.value) / m.floor, 0);
}
