import { mkdir, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { basename, dirname, join, relative, resolve, isAbsolute } from 'node:path';
import type { OptimizeConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { YachayError, isYachayError } from '../errors.js';
import type { NativeKernels } from '../analysis/native.js';
import { probe } from './probe.js';
import type { MediaInfo } from './probe.js';
import { analyse, type Analysis } from './analyse.js';
import type { FaceFrame, faceTap } from '../models/face.js';
import { findShots, speechIntervals } from './shots.js';
import type { Shot, ShotClass } from './shots.js';
import { NEAR_MISS, makePlan, withMoreBits } from './plan.js';
import type { Plan } from './plan.js';
import { encode } from './encode.js';
import { writeMaster } from './package.js';
import type { PackageSummary } from './package.js';
import type { VerifyReport } from './verify.js';
import type { Progress } from './progress.js';
import { exists, ioError, publishDir } from '../util/atomic.js';
import { observedRows } from '../models/rate/observe.js';
import type { EncodeRow } from '../models/rate/sweep.js';

export interface OptimizeRequest {
  input: string;
  out: string;
  planOnly?: boolean;
}

export interface OptimizeDeps {
  cfg: Readonly<OptimizeConfig>;
  log: Logger;
  kernels: NativeKernels;
  progress: Progress;
  signal?: AbortSignal | undefined;
  /** the box's data folder, where its own model versions live */
  dataDir?: string | undefined;
}

export interface OptimizeResult {
  input: MediaInfo;
  plan: Plan;
  shots: Shot[];
  out?: string | undefined;
  package?: PackageSummary | undefined;
  verify?: VerifyReport | undefined;
  attempts: number;
  timings: Record<string, number>;
  /** every verified encode of the lowest rendition, per shot: the rate model's feedback */
  observed: EncodeRow[];
  /** what each assisting model decided (absent with --no-models) */
  models?: Record<string, unknown> | undefined;
}

function inside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Refuse output locations that could overwrite the recording or someone else's files. */
export async function checkOutput(input: string, out: string): Promise<void> {
  const inAbs = resolve(input); const outAbs = resolve(out);
  if (inside(outAbs, inAbs)) {
    throw new YachayError('YCH_ERR_OUTPUT_INSIDE_INPUT', `output folder ${out} is inside the input ${input}`);
  }
  if (inside(inAbs, outAbs)) {
    throw new YachayError('YCH_ERR_OUTPUT_INSIDE_INPUT', `input ${input} is inside the output folder ${out}, which would be replaced`);
  }
  if (await exists(outAbs)) {
    const names = await readdir(outAbs).catch(() => null);
    if (names === null) throw new YachayError('YCH_ERR_OUTPUT_EXISTS', `output ${out} exists and is not a folder`);
    if (names.length > 0 && !names.includes('master.m3u8')) {
      throw new YachayError('YCH_ERR_OUTPUT_EXISTS', `output folder ${out} already holds other files (not a Yachay package)`);
    }
  }
}

export async function optimize(req: OptimizeRequest, deps: OptimizeDeps): Promise<OptimizeResult> {
  const { cfg, log, kernels, progress, signal } = deps;
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, weight: number, fn: () => Promise<T>): Promise<T> => {
    progress.stage(name, weight);
    const t0 = performance.now();
    try { return await fn(); } finally { timings[name] = Math.round(performance.now() - t0); }
  };

  if (!req.planOnly) await checkOutput(req.input, req.out);
  const info = await timed('probe', 0.01, () => probe(req.input, signal));
  log.info({ info }, 'probed');
  // the face model looks at frames of the analysis decode as it runs (one decode for both)
  const faces = cfg.models.face && info.video ? await openFaces(info) : undefined;
  let an: Analysis;
  let faceFrames: { frames: FaceFrame[]; ms: number } | undefined;
  try {
    an = await timed('analyse', 0.14, () => analyse(info, kernels, cfg.analysisFps, {
      signal, onProgress: (s) => progress.update(s / info.duration), tap: faces?.tap,
    }));
    if (faces) faceFrames = { frames: await faces.done(), ms: faces.loadMs + faces.modelMs() };
  } finally {
    await faces?.dispose();
  }
  const shots = findShots(an, info.duration);
  const rulePlan = makePlan(info, shots, { segmentSeconds: cfg.segmentSeconds });
  let plan = rulePlan;
  let modelNotes: Record<string, unknown> | undefined;
  if (cfg.models.vad || cfg.models.face || cfg.models.rate) {
    // loaded on first use: a rules-only run never touches the inference runtimes
    const { assistPlan } = await import('../models/assist.js');
    const assisted = await timed('models', 0.05, () => assistPlan({
      info, analysis: an, shots, plan, models: cfg.models, floors: cfg.floors, dataDir: deps.dataDir, log, signal, faces: faceFrames,
    }));
    plan = assisted.plan;
    modelNotes = assisted.notes;
    for (const [k, v] of Object.entries(assisted.timings)) timings[`model:${k}`] = v;
  }
  // the samples are only needed by the models; a long lesson's PCM is not kept through the encode
  if (an.audio) an.audio.pcm = undefined;
  if (req.planOnly) {
    progress.done();
    return { input: info, plan, shots, attempts: 0, timings, models: modelNotes, observed: [] };
  }

  const outAbs = resolve(req.out);
  await mkdir(dirname(outAbs), { recursive: true }).catch((e: unknown) => { throw ioError(e, `creating ${dirname(outAbs)}`); });
  const tmp = join(dirname(outAbs), `.${basename(outAbs)}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  try {
    await mkdir(tmp, { recursive: true });
    let report: VerifyReport | undefined;
    const observed: EncodeRow[] = [];
    let attempts = 0;
    let only: string[] | undefined; let withAudio = true;
    for (;;) {
      attempts++;
      await timed(attempts === 1 ? 'encode' : `encode#${attempts}`, attempts === 1 ? 0.6 : 0, () => encode(plan, info.path, tmp, {
        preset: cfg.preset, threads: cfg.threads, signal, only, audio: withAudio,
        onProgress: (s) => progress.update(s / info.duration),
      }));
      if (!cfg.verify) break;
      // loaded on first use: --plan and --no-verify runs never touch the OCR/STOI code
      const { verify } = await import('./verify.js');
      report = await timed(attempts === 1 ? 'verify' : `verify#${attempts}`, attempts === 1 ? 0.2 : 0, () => verify(plan, info.path, tmp, {
        floors: cfg.floors, signal, lang: cfg.ocrLang, speech: speechIntervals(an.audio),
      }));
      // a re-encode only re-measures what it changed: rows come from the attempts that measured them
      if (attempts === 1 || (only?.length ?? 0) > 0) observed.push(...observedRows(basename(req.input), plan, shots, report, cfg.floors));
      log.info({ attempt: attempts, ocr: report.ocrRatio, stoi: report.stoi, ssim: report.ssim, failed: report.failedClasses, audioFailed: report.audioFailed }, 'verified');
      if (report.failedClasses.length === 0 && !report.audioFailed) break;
      if (attempts >= cfg.maxAttempts) {
        throw new YachayError('YCH_ERR_QUALITY_FLOOR', `after ${attempts} encodes the lowest rendition still misses its floor: ${describeMiss(report)}`);
      }
      // more bits only where the floor was missed; the rest of the package is kept
      const r0 = plan.renditions[0]?.id;
      if (r0 && report.failedClasses.length) {
        const floorOf = (c: ShotClass): number => (c === 'motion' ? cfg.floors.ssimMotion : cfg.floors.ssimTalkingHead);
        const near = report.failedClasses.filter((c) => report!.ssim[c] !== undefined && floorOf(c) - report!.ssim[c]! < NEAR_MISS);
        // a class the model pushed past the rules' quantiser and that missed goes back to the
        // rules first: a wrong guess costs one encode, never the lesson
        const back = backToRules(plan, rulePlan, r0, report.failedClasses);
        plan = withMoreBits(back.plan, r0, report.failedClasses.filter((c) => !back.classes.includes(c)), 3, near);
      }
      if (report.audioFailed && plan.audio) {
        // a pause gated too eagerly can clip words: drop the gate before spending more bits
        plan = plan.audio.gate
          ? { ...plan, audio: { ...plan.audio, gate: undefined } }
          : { ...plan, audio: { ...plan.audio, opus: { ...plan.audio.opus, bitrate: plan.audio.opus.bitrate + 6000 } } };
      }
      only = report.failedClasses.length && r0 ? [r0] : [];
      withAudio = report.audioFailed;
      log.warn({ attempt: attempts, miss: describeMiss(report) }, 're-encoding with more bits');
    }
    const pkg = await timed('publish', 0.05, async () => {
      const summary = await writeMaster(tmp, plan, signal);
      // plain writes: the temp folder is fsync'ed as a whole and renamed in one step by publishDir
      await writeFile(join(tmp, 'plan.json'), JSON.stringify(plan, null, 1));
      await writeFile(join(tmp, 'report.json'), JSON.stringify({ input: info, shots, verify: report, attempts, timings, models: modelNotes }, null, 1));
      await publishDir(tmp, outAbs);
      return summary;
    });
    progress.done();
    return { input: info, plan, shots, out: outAbs, package: pkg, verify: report, attempts, timings, models: modelNotes, observed };
  } catch (err) {
    // ffmpeg does not always say ENOSPC: on a full disk it may leave a truncated playlist that
    // only the next step trips over, so the disk itself is asked before blaming anything else
    const full = await diskFull(dirname(outAbs));
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    if (full && !isYachayError(err, 'YCH_ERR_ABORTED')) {
      throw new YachayError('YCH_ERR_DISK_FULL', `disk full while writing ${req.out}`, { cause: err });
    }
    if (isYachayError(err)) throw err;
    throw ioError(err, `optimizing ${req.input}`);
  }
}

/** Shots of the missed classes coded coarser than the rules said get the rules' quantiser back. */
export function backToRules(plan: Plan, rules: Plan, renditionId: string, missed: ShotClass[]): { plan: Plan; classes: ShotClass[] } {
  const ruleR = rules.renditions.find((r) => r.id === renditionId);
  if (!ruleR) return { plan, classes: [] };
  const classes = new Set<ShotClass>();
  const renditions = plan.renditions.map((r) => r.id !== renditionId ? r : {
    ...r,
    shots: r.shots.map((s, i) => {
      const cls = plan.shots[i]!.cls;
      const rule = ruleR.shots[i]!;
      if (!missed.includes(cls) || s.qp <= rule.qp) return s;
      classes.add(cls);
      return { ...s, qp: rule.qp };
    }),
  });
  return { plan: { ...plan, renditions }, classes: [...classes] };
}

/** Less than 1 MiB left for us on the output's filesystem. */
async function diskFull(dir: string): Promise<boolean> {
  try {
    const s = await statfs(dir);
    return s.bavail * s.bsize < 1024 * 1024;
  } catch {
    return false;
  }
}

function describeMiss(r: VerifyReport): string {
  const parts: string[] = [];
  if (r.ocrRatio !== undefined && r.failedClasses.some((c) => c === 'slide' || c === 'board')) parts.push(`slide text ${r.ocrRatio.toFixed(3)}`);
  for (const c of r.failedClasses) if (r.ssim[c] !== undefined) parts.push(`SSIM ${c} ${r.ssim[c]!.toFixed(3)}`);
  if (r.audioFailed && r.stoi !== undefined) parts.push(`speech STOI ${r.stoi.toFixed(3)}`);
  return parts.join(', ') || 'unknown';
}

/** The face model, fed by the analysis decode; loaded on first use like the other models. */
async function openFaces(info: MediaInfo): Promise<ReturnType<typeof faceTap> & { loadMs: number; dispose: () => Promise<void> }> {
  const t0 = performance.now();
  const [{ faceTap: tapOf }, { loadManifest, openModel }] = await Promise.all([import('../models/face.js'), import('../models/manifest.js')]);
  const session = await openModel(loadManifest(), 'face');
  return { ...tapOf(session, info, { fps: 2 }), loadMs: performance.now() - t0, dispose: () => session.dispose() };
}
