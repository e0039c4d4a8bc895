import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../media/run.js';
import { VIDEO_DELAY_FRAMES, hlsOut, runGraph, videoChain } from './encode.js';
import type { Plan, RenditionPlan } from './plan.js';
import type { ShotClass } from './shots.js';
import type { Miss } from './verify.js';

/**
 * The AV1 data saver: the lowest rendition's frames (same per-shot selection and size) coded
 * by SVT-AV1 instead of x264, for phones that decode AV1; H.264 stays beside it for the rest.
 *
 * SVT-AV1 1.4 through ffmpeg 5.1 has no rate zones and ignores forced keyframes, so the
 * rendition is coded in chunks, one per stretch between two of the plan's keyframes (every shot
 * start, every segment of a moving shot): each chunk starts on a keyframe, as the H.264 one
 * does, and takes its shot's quality. The chunks share one sequence header (same size, profile
 * and settings; the quality lives in the frame headers), so they join into one stream. Chunks
 * are IVF, whose clock is the frame grid (1/baseFps).
 */
export interface Av1Settings {
  /** SVT-AV1 preset: 0 slowest … 13 fastest */
  preset: number;
  /** AV1 CRF = the shot's x264 QP + this (AV1's scale is 0–63, coarser per step than H.264's 0–51) */
  crfOffset: number;
  /** added to crfOffset per shot class (text keeps its floor at coarser AV1 settings than motion) */
  classOffset?: Partial<Record<ShotClass, number>> | undefined;
  /** added on top, by shot index: a shot that missed its floor */
  shotOffset?: Record<number, number> | undefined;
}

/**
 * Measured on the bench lecture es-1 (README, "AV1"): CRF = QP + 20 held every floor at
 * 0.404 MB/min, slides, board and face with room to spare (OCR 1.0, SSIM 0.98/0.97) and the
 * fractal zoom with little (0.761 against 0.75); these class offsets took it to 0.357 MB/min
 * (H.264: 0.426) with every floor held (OCR 0.979, head 0.958, motion 0.754). Only preset 10
 * was measured.
 */
export const AV1_DEFAULTS: Av1Settings = { preset: 10, crfOffset: 20, classOffset: { slide: 8, board: 6, talking_head: 6, motion: 2 } };

export interface Av1Chunk { from: number; to: number; crf: number }

const EPS = 1e-4;

/** The plan's keyframes cut the lesson; a chunk takes the finest quality of the shots it covers. */
export function av1Chunks(plan: Plan, r: RenditionPlan, s: Av1Settings): Av1Chunk[] {
  const cuts = [...new Set([0, ...plan.keyframes.filter((k) => k > EPS && k < plan.duration - EPS)])].sort((a, b) => a - b);
  const out: Av1Chunk[] = [];
  for (let i = 0; i < cuts.length; i++) {
    const from = cuts[i]!;
    const to = cuts[i + 1] ?? plan.duration;
    const crfOf = (k: number): number => r.shots[k]!.qp + s.crfOffset + (s.classOffset?.[plan.shots[k]!.cls] ?? 0) + (s.shotOffset?.[plan.shots[k]!.index] ?? 0);
    let crf = Infinity;
    plan.shots.forEach((sh, k) => {
      const end = plan.shots[k + 1]?.start ?? plan.duration;
      if (sh.start < to - EPS && end > from + EPS) crf = Math.min(crf, crfOf(k));
    });
    if (!Number.isFinite(crf)) crf = Math.min(...r.shots.map((_, k) => crfOf(k)));
    out.push({ from, to, crf: Math.max(1, Math.min(63, Math.round(crf))) });
  }
  return out;
}

export function chunkArgs(plan: Plan, r: RenditionPlan, input: string, file: string, c: Av1Chunk, s: Av1Settings, threads: number): string[] {
  const F = plan.baseFps;
  return ['-hide_banner', '-nostdin', '-v', 'error', '-nostats', '-y', '-threads', String(threads),
    '-ss', Math.max(0, c.from - 0.5 / F).toFixed(6), '-t', (c.to - c.from + 1).toFixed(6), '-copyts', '-start_at_zero', '-i', input,
    // the chunk's own clock starts at its first frame: the join adds each chunk's length back
    '-filter_complex', `[0:v:0]fps=${F},${videoChain(plan, r, { from: c.from, to: c.to })},setpts=PTS-${c.from.toFixed(6)}/TB[o]`,
    '-map', '[o]', '-an', '-fps_mode', 'vfr',
    '-c:v', 'libsvtav1', '-preset', String(s.preset), '-crf', String(c.crf), '-g', '100000',
    '-pix_fmt', 'yuv420p', '-f', 'ivf', file];
}

export interface Av1EncodeOptions {
  settings: Av1Settings;
  threads: number;
  signal?: AbortSignal | undefined;
  onProgress?: ((outSeconds: number) => void) | undefined;
}

/** Codes rendition `r` of the plan as AV1 into `outDir/id` (an HLS fMP4 folder like the others). */
export async function encodeAv1(plan: Plan, r: RenditionPlan, id: string, input: string, outDir: string, o: Av1EncodeOptions): Promise<void> {
  const work = join(outDir, `.${id}-chunks`);
  try {
    const list = await encodeChunks(plan, r, input, work, o);
    await joinChunks(plan, list, join(outDir, id), o.signal);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Every chunk into `work`; returns the concat list that joins them. */
export async function encodeChunks(plan: Plan, r: RenditionPlan, input: string, work: string, o: Av1EncodeOptions): Promise<string> {
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const chunks = av1Chunks(plan, r, o.settings);
  const list = ['ffconcat version 1.0'];
  for (const [i, c] of chunks.entries()) {
    const file = join(work, `c${String(i).padStart(5, '0')}.ivf`);
    await runGraph(chunkArgs(plan, r, input, file, c, o.settings, o.threads), join(work, 'graph.txt'), { signal: o.signal });
    o.onProgress?.(c.to);
    list.push(`file '${file}'`, `duration ${(c.to - c.from).toFixed(6)}`);
  }
  const path = join(work, 'list.ffconcat');
  await writeFile(path, list.join('\n') + '\n');
  return path;
}

/** The chunks as one HLS fMP4 rendition in `dir`. */
export async function joinChunks(plan: Plan, list: string, dir: string, signal?: AbortSignal): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await run('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', list,
    '-map', '0:v:0', '-c', 'copy',
    // x264's B-frames start the H.264 video VIDEO_DELAY_FRAMES late and the shared audio is
    // shifted to match; AV1 has no such delay, so it is shifted by the same amount
    '-output_ts_offset', (VIDEO_DELAY_FRAMES / plan.baseFps).toFixed(6),
    ...hlsOut(dir, plan.segmentSeconds)], { signal });
}

/** RFC 6381 / AV1-ISOBMFF codec string (`av01.P.LLT.DD`) from ffprobe's profile and level. */
export function av1CodecString(s: { profile?: string; level?: number; pix_fmt?: string }): string {
  const p = /professional/i.test(s.profile ?? '') ? 2 : /high/i.test(s.profile ?? '') ? 1 : 0;
  const lvl = String(s.level !== undefined && s.level >= 0 ? s.level : 8).padStart(2, '0');
  const depth = /p1[02]/.test(s.pix_fmt ?? '') ? (/p12/.test(s.pix_fmt ?? '') ? '12' : '10') : '08';
  // SVT-AV1 codes the Main tier at every level it picks
  return `av01.${p}.${lvl}M.${depth}`;
}


/** What the AV1 step did, for report.json. */
export interface Av1Report {
  id: string;
  /** kept in the package, or dropped (the H.264 data saver stays either way) */
  kept: boolean;
  attempts: number;
  ms: number;
  misses?: Miss[] | undefined;
  reason?: string | undefined;
}

export const AV1_ID = 'v0a';
/** AV1 CRF steps taken off the shots that missed, on the one re-encode */
const RETRY_STEP = 6;

/**
 * Adds the AV1 data saver to the package in `dir` (the published plan's lowest rendition,
 * verified against the same floors as the H.264 one). A miss gets one re-encode with a finer
 * quality on the missed shots; if it still misses, or the encoder fails, the AV1 rendition is
 * dropped with the reason: the lesson is never lost for it.
 */
export async function addAv1(plan: Plan, source: string, dir: string, o: {
  threads: number; verify?: ((p: Plan) => Promise<Miss[]>) | undefined; signal?: AbortSignal | undefined; settings?: Av1Settings | undefined;
  /** keep it even when it is not smaller than the H.264 one (tests on synthetic clips) */
  keepLarger?: boolean | undefined;
}): Promise<Av1Report> {
  const t0 = Date.now();
  const r0 = plan.renditions[0];
  if (!r0) return { id: AV1_ID, kept: false, attempts: 0, ms: 0, reason: 'no video' };
  let settings = o.settings ?? AV1_DEFAULTS;
  const asAv1: Plan = { ...plan, renditions: [{ ...r0, id: AV1_ID }] };
  let attempts = 0;
  let misses: Miss[] = [];
  try {
    for (;;) {
      attempts++;
      await encodeAv1(plan, r0, AV1_ID, source, dir, { settings, threads: o.threads, signal: o.signal });
      misses = o.verify ? await o.verify(asAv1) : [];
      if (misses.length === 0) {
        const [a, h] = await Promise.all([folderBytes(join(dir, AV1_ID)), folderBytes(join(dir, r0.id))]);
        if (a < h || o.keepLarger) return { id: AV1_ID, kept: true, attempts, ms: Date.now() - t0 };
        // a phone that picks it would pay more than for H.264: no reason to list it
        await rm(join(dir, AV1_ID), { recursive: true, force: true });
        return { id: AV1_ID, kept: false, attempts, ms: Date.now() - t0, reason: `not smaller than H.264 (${a} ≥ ${h} bytes)` };
      }
      if (attempts >= 2) break;
      settings = finerOn(settings, misses.map((m) => m.shot).filter((s): s is number => s !== undefined));
    }
    await rm(join(dir, AV1_ID), { recursive: true, force: true });
    return { id: AV1_ID, kept: false, attempts, ms: Date.now() - t0, misses, reason: 'under a floor after a re-encode' };
  } catch (err) {
    if ((err as { code?: string }).code === 'YCH_ERR_ABORTED') throw err;
    await rm(join(dir, AV1_ID), { recursive: true, force: true });
    return { id: AV1_ID, kept: false, attempts, ms: Date.now() - t0, reason: `encode failed: ${(err as Error).message}` };
  }
}

/** Settings with the missed shots RETRY_STEP finer (per-shot offsets win over the class's). */
export function finerOn(s: Av1Settings, shots: readonly number[]): Av1Settings {
  const shotOffset = { ...(s.shotOffset ?? {}) };
  for (const i of shots) shotOffset[i] = (shotOffset[i] ?? 0) - RETRY_STEP;
  return { ...s, shotOffset };
}

async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for (const f of await readdir(dir)) n += (await stat(join(dir, f))).size;
  return n;
}
