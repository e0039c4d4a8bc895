import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Floors } from '../config/schema.js';
import type { Plan } from './plan.js';
import type { ShotClass } from './shots.js';
import { grabFrame, ocrFrame, wordCount, wordAccuracy } from '../quality/ocr.js';
import { ssimWindow } from '../quality/ssim.js';
import { decodePcm } from '../quality/audio.js';
import { alignOffset, stoiOverIntervals } from '../quality/stoi.js';

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

export async function verify(plan: Plan, source: string, pkgDir: string, opts: VerifyOptions): Promise<VerifyReport> {
  const r0 = plan.renditions[0];
  const report: VerifyReport = { rendition: r0?.id ?? 'audio', checks: [], ssim: {}, failedClasses: [], audioFailed: false, skipped: [] };
  const work = await mkdtemp(join(tmpdir(), 'yachay-verify-'));
  try {
    if (r0) {
      const candidate = join(pkgDir, r0.id, 'index.m3u8');
      // text: middle of each slide, end of each board (when the writing is complete)
      const textShots = plan.shots.filter((s) => (s.cls === 'slide' || s.cls === 'board') && s.end - s.start >= 1.5);
      const ocrShots = pickSpread(textShots, opts.maxOcr ?? 8);
      const ocr = await pool(ocrShots, 2, async (s) => {
        const at = s.cls === 'board' ? Math.max(s.start, s.end - 1) : (s.start + s.end) / 2;
        const a = join(work, `src-${s.index}.png`); const b = join(work, `out-${s.index}.png`);
        await grabFrame(source, at, a, { width: OCR_W, height: OCR_H, signal: opts.signal });
        await grabFrame(candidate, at, b, { width: OCR_W, height: OCR_H, signal: opts.signal });
        const [ta, tb] = await Promise.all([ocrFrame(a, opts.lang, opts.signal), ocrFrame(b, opts.lang, opts.signal)]);
        return { s, at, words: wordCount(ta), acc: wordAccuracy(ta, tb) };
      });
      let words = 0; let kept = 0;
      for (const o of ocr) {
        if (o.words < 3) continue; // nothing legible on the source either
        words += o.words; kept += o.acc * o.words;
        report.checks.push({ kind: 'ocr', shot: o.s.index, cls: o.s.cls, at: o.at, value: o.acc, floor: opts.floors.ocrRatio, ok: o.acc >= opts.floors.ocrRatio, detail: `${o.words} words on source` });
      }
      if (words > 0) {
        report.ocrRatio = kept / words;
        if (report.ocrRatio < opts.floors.ocrRatio) {
          for (const c of report.checks) if (c.kind === 'ocr' && !c.ok && c.cls && !report.failedClasses.includes(c.cls)) report.failedClasses.push(c.cls);
        }
      } else if (textShots.length) {
        report.skipped.push('ocr: no legible text found on the source frames');
      }

      // pictures: a window in the middle of each face / motion shot
      const picShots = pickSpread(plan.shots.filter((s) => (s.cls === 'talking_head' || s.cls === 'motion') && s.end - s.start >= 1), opts.maxSsim ?? 6);
      const sums: Partial<Record<ShotClass, { v: number; n: number }>> = {};
      for (const s of picShots) {
        // skip the first frames: the cut itself is coded at the previous shot's settings
        const dur = Math.min(SSIM_WINDOW, s.end - s.start - 0.4);
        const at = s.start + 0.2 + (s.end - s.start - 0.4 - dur) / 2;
        const m = await ssimWindow(source, candidate, { start: at, duration: dur, width: r0.width, height: r0.height, fps: plan.baseFps, signal: opts.signal });
        const floor = s.cls === 'motion' ? opts.floors.ssimMotion : opts.floors.ssimTalkingHead;
        report.checks.push({ kind: 'ssim', shot: s.index, cls: s.cls, at, value: m.all, floor, ok: m.all >= floor });
        const acc = (sums[s.cls] ??= { v: 0, n: 0 });
        acc.v += m.all * dur; acc.n += dur;
      }
      for (const [cls, acc] of Object.entries(sums) as Array<[ShotClass, { v: number; n: number }]>) {
        report.ssim[cls] = acc.v / acc.n;
        const floor = cls === 'motion' ? opts.floors.ssimMotion : opts.floors.ssimTalkingHead;
        if (report.ssim[cls]! < floor && !report.failedClasses.includes(cls)) report.failedClasses.push(cls);
      }
    }

    // speech: the Opus track (the lowest rendition's audio) over the speech the analysis found
    if (plan.audio && opts.speech.length) {
      const rate = 16000;
      const [src, out] = await Promise.all([
        decodePcm(source, { sampleRate: rate, signal: opts.signal }),
        decodePcm(join(pkgDir, 'a-opus', 'index.m3u8'), { sampleRate: rate, signal: opts.signal }),
      ]);
      const lag = alignOffset(src, out, rate, 0.5);
      const aligned = lag >= 0 ? out.subarray(lag) : concatSilence(-lag, out);
      const value = stoiOverIntervals(src, aligned, rate, opts.speech);
      report.stoi = value;
      report.audioFailed = value < opts.floors.stoi;
      report.checks.push({ kind: 'stoi', at: 0, value, floor: opts.floors.stoi, ok: !report.audioFailed, detail: `lag ${lag} samples` });
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
