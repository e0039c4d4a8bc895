import { mkdir, readdir, rename, rm, statfs, writeFile } from 'node:fs/promises';
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
import type { Shot } from './shots.js';
import { refineCuts } from './cuts.js';
import { NEAR_MISS, SPEECH_SAFE_BITRATE, backToRules, baseFpsOf, makePlan, withMoreBits } from './plan.js';
import type { Plan } from './plan.js';
import { withBoost, type Boost } from './boost.js';
import { encode, headerQp } from './encode.js';
import { missKey, worthRetrying, type GiveUp } from './attempts.js';
import { writeMaster } from './package.js';
import type { PackageSummary } from './package.js';
import type { Av1Report } from './av1.js';
import type { Miss, VerifyReport } from './verify.js';
import type { Progress } from './progress.js';
import { exists, ioError, publishDir } from '../util/atomic.js';
import { observedRows } from '../models/rate/observe.js';
import type { EncodeRow } from '../models/rate/sweep.js';

export interface OptimizeRequest {
  input: string;
  out: string;
  planOnly?: boolean;
  /** the teacher asked for more quality (see boost.ts) */
  boost?: Boost | undefined;
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
  /** shots (and speech) published under their floor after every attempt: the best attempt is published anyway */
  misses: Miss[];
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
    if (faces) {
      faceFrames = { frames: await faces.done(), ms: faces.loadMs + faces.modelMs() };
      log.info({ ...faces.counts(), ms: Math.round(faces.modelMs()) }, 'face model: frames looked at, and still frames that kept the last answer');
    }
  } finally {
    await faces?.dispose();
  }
  let shots = findShots(an, info.duration);
  if (cfg.refineCuts && info.video && shots.length > 1) {
    const refined = await timed('cuts', 0.01, () => refineCuts(info.path, shots, {
      analysisFps: cfg.analysisFps, baseFps: baseFpsOf(info), signal,
    }));
    shots = refined.shots;
    log.info({ moved: refined.moved, of: shots.length - 1 }, 'cuts moved onto the source frame where the picture changes');
  }
  const rulePlan = makePlan(info, shots, { segmentSeconds: cfg.segmentSeconds });
  let plan = rulePlan;
  let modelNotes: Record<string, unknown> | undefined;
  try {
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
  } finally {
    // the samples are only needed by the models; a long lesson's PCM is not kept through the
    // encode, nor left behind when a model fails
    await an.audio?.pcmFile?.dispose();
  }
  // the face model may have re-classed shots: the report and the rate model's feedback rows
  // carry the class the shot was encoded as
  shots = shots.map((s, i) => (plan.shots[i] && plan.shots[i]!.cls !== s.cls ? { ...s, cls: plan.shots[i]!.cls } : s));
  if (req.boost && req.boost.level > 0) plan = withBoost(plan, req.boost);
  if (req.planOnly) {
    progress.done();
    return { input: info, plan, shots, attempts: 0, timings, models: modelNotes, observed: [], misses: [] };
  }

  const outAbs = resolve(req.out);
  await mkdir(dirname(outAbs), { recursive: true }).catch((e: unknown) => { throw ioError(e, `creating ${dirname(outAbs)}`); });
  const tmp = join(dirname(outAbs), `.${basename(outAbs)}.tmp-${process.pid}`);
  // the renditions of the best attempt so far while a re-encode replaces them; its name starts
  // like the temp folder's, so a run killed in between leaves nothing the next run keeps
  const prev = `${tmp}-prev`;
  await rm(tmp, { recursive: true, force: true });
  await rm(prev, { recursive: true, force: true });
  try {
    await mkdir(tmp, { recursive: true });
    const observed: EncodeRow[] = [];
    const ceilings = new Map<number, number>();
    const maxAttempts = cfg.maxAttempts + (req.boost?.level ?? 0);
    let attempts = 0;
    let only: string[] | undefined; let withAudio = true;
    /** the header QP of the encode that wrote the lowest rendition's init section: what a splice must keep */
    let initQp = plan.renditions[0] ? headerQp(plan.renditions[0]) : 0;
    /** per re-encode: how many segments of the lowest rendition were encoded again, or why the whole was */
    const reencodes: Array<{ attempt: number; segments?: number; of?: number; whole?: string }> = [];
    /** what each miss measured at every attempt, and the misses no further attempt was spent on */
    const history = new Map<string, number[]>();
    const gaveUp: Array<GiveUp & { attempt: number }> = [];
    /** the stretches (source seconds) the last re-encode replaced, when it spliced segments */
    let changed: Array<{ start: number; end: number }> | undefined;
    /** the attempt that will be published: bits only go up, so normally the last, unless a re-encode failed or measured worse */
    let best: { plan: Plan; report: VerifyReport | undefined; attempt: number } | undefined;
    for (;;) {
      attempts++;
      const audioIds = withAudio && plan.audio ? ['a-opus', 'a-aac'] : [];
      const r0 = plan.renditions[0]?.id;
      // a re-encode of the lowest rendition first tries to redo only the segments that changed
      const splice = best !== undefined && r0 !== undefined && (only?.includes(r0) ?? false);
      const replaced = best ? [...(only ?? []).filter((id) => !(splice && id === r0)), ...audioIds] : [];
      if (best) await keep(tmp, prev, replaced);
      try {
        await timed(attempts === 1 ? 'encode' : `encode#${attempts}`, attempts === 1 ? 0.6 : 0, async () => {
          let rest = only;
          changed = undefined;
          if (splice) {
            const spliced = await spliceChanged(best!.plan, plan, info.path, tmp, prev, r0!, { preset: cfg.preset, threads: cfg.threads, headerQp: initQp, signal, log });
            if (spliced) {
              replaced.push(...spliced.files);
              changed = spliced.spans;
              reencodes.push({ attempt: attempts, segments: spliced.files.length, of: spliced.of });
              rest = only!.filter((id) => id !== r0);
              if (rest.length === 0 && audioIds.length === 0) return;
            } else {
              reencodes.push({ attempt: attempts, whole: 'the segments could not be spliced' });
              await rm(join(prev, r0!), { recursive: true, force: true });
              await rename(join(tmp, r0!), join(prev, r0!));
              replaced.push(r0!);
              initQp = headerQp(plan.renditions[0]!);
            }
          }
          await encode(plan, info.path, tmp, {
            preset: cfg.preset, threads: cfg.threads, signal, only: rest, audio: withAudio,
            onProgress: (s) => progress.update(s / info.duration),
          });
        });
      } catch (err) {
        // the first encode failing means nothing playable exists; a re-encode failing leaves
        // the previous attempt, which is put back and published with its misses
        if (!best || isYachayError(err, 'YCH_ERR_ABORTED') || await diskFull(dirname(outAbs))) throw err;
        log.warn({ err, attempt: attempts }, 're-encode failed: publishing the previous attempt');
        await restore(tmp, prev, replaced);
        break;
      }
      if (!cfg.verify) { best = { plan, report: undefined, attempt: attempts }; break; }
      // loaded on first use: --plan and --no-verify runs never touch the OCR/STOI code
      const { verify, shortfall } = await import('./verify.js');
      const reuse = changed && best?.report ? { checks: best.report.checks, changed, audio: withAudio } : undefined;
      const report = await timed(attempts === 1 ? 'verify' : `verify#${attempts}`, attempts === 1 ? 0.2 : 0, () => verify(plan, info.path, tmp, {
        floors: cfg.floors, signal, lang: cfg.ocrLang, speech: speechIntervals(an.audio), ceilings, reuse,
      }));
      // a re-encode only re-measures what it changed: rows come from the attempts that measured them
      if (attempts === 1 || (only?.length ?? 0) > 0) observed.push(...observedRows(basename(req.input), plan, shots, report, cfg.floors));
      log.info({ attempt: attempts, ocr: report.ocrRatio, stoi: report.stoi, ssim: report.ssim, misses: report.misses.length }, 'verified');
      if (best?.report && shortfall(report.misses) > shortfall(best.report.misses)) {
        // more bits measured worse (noise in the measure): more of them will not help
        log.warn({ attempt: attempts, miss: describeMisses(report.misses) }, 're-encode measured worse: publishing the previous attempt');
        await restore(tmp, prev, replaced);
        break;
      }
      best = { plan, report, attempt: attempts };
      await rm(prev, { recursive: true, force: true });
      for (const m of report.misses) history.set(missKey(m), [...(history.get(missKey(m)) ?? []), m.value]);
      if (report.misses.length === 0 || attempts >= maxAttempts) break;
      const { retry, giveUp } = worthRetrying(report.misses, history, maxAttempts - attempts);
      for (const g of giveUp) {
        if (gaveUp.some((x) => missKey(x) === missKey(g))) continue;
        gaveUp.push({ ...g, attempt: attempts });
        log.warn({ attempt: attempts, shot: g.shot, kind: g.kind, reason: g.reason }, 'no more attempts for this shot');
      }
      if (retry.length === 0) break;
      const next = nextAttempt(plan, rulePlan, { misses: retry });
      if (!next) break; // nothing left to add: quantiser and frame rate are at their limits
      ({ plan, only, withAudio } = next);
      log.warn({ attempt: attempts, miss: describeMisses(report.misses) }, 're-encoding with more bits');
    }
    const published = best!;
    const misses = published.report?.misses ?? [];
    if (misses.length) log.warn({ attempts, misses: describeMisses(misses) }, 'published under the floor on some shots: the best attempt is kept');
    const av1 = cfg.av1 === 'on' ? await timed('av1', 0, () => withAv1(published.plan, info.path, tmp, cfg, ceilings, signal)) : undefined;
    const pkg = await timed('publish', 0.05, async () => {
      const summary = await writeMaster(tmp, published.plan, signal, av1?.kept ? [av1.id] : []);
      // plain writes: the temp folder is fsync'ed as a whole and renamed in one step by publishDir
      await writeFile(join(tmp, 'plan.json'), JSON.stringify(published.plan, null, 1));
      await writeFile(join(tmp, 'report.json'), JSON.stringify({
        input: info, shots, verify: published.report, misses, attempts, published: published.attempt, reencodes, gaveUp, boost: req.boost, timings, models: modelNotes, av1,
      }, null, 1));
      await publishDir(tmp, outAbs);
      return summary;
    });
    progress.done();
    return { input: info, plan: published.plan, shots, out: outAbs, package: pkg, verify: published.report, misses, attempts, timings, models: modelNotes, observed };
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
  } finally {
    await rm(prev, { recursive: true, force: true }).catch(() => undefined);
  }
}

export { backToRules };

/** The AV1 data saver (optimize.av1), verified like the H.264 one; loaded only when asked for. */
async function withAv1(plan: Plan, input: string, dir: string, cfg: Readonly<OptimizeConfig>, ceilings: Map<number, number>, signal?: AbortSignal): Promise<Av1Report> {
  const { addAv1 } = await import('./av1.js');
  const check = cfg.verify ? async (p: Plan): Promise<Miss[]> => {
    const { verify } = await import('./verify.js');
    // the audio is the H.264 one's, already measured: pictures and text only
    return (await verify(p, input, dir, { floors: cfg.floors, signal, lang: cfg.ocrLang, speech: [], ceilings })).misses;
  } : undefined;
  return addAv1(plan, input, dir, { threads: cfg.threads, verify: check, signal });
}

/**
 * The next attempt: more bits on the shots that missed (the rest of the package is kept), the
 * rules' quantiser back first where the model raised it, and for speech the gate off, then a
 * higher bitrate. Undefined when nothing would change.
 */
export function nextAttempt(plan: Plan, rulePlan: Plan, report: Pick<VerifyReport, 'misses'>): { plan: Plan; only: string[]; withAudio: boolean } | undefined {
  const r0 = plan.renditions[0]?.id;
  const shotMisses = report.misses.filter((m) => m.shot !== undefined);
  let next = plan;
  if (r0 && shotMisses.length) {
    const missed = shotMisses.map((m) => m.shot!);
    const near = shotMisses.filter((m) => m.kind === 'picture' && m.floor - m.value < NEAR_MISS).map((m) => m.shot!);
    const back = backToRules(plan, rulePlan, r0, missed);
    next = withMoreBits(back.plan, r0, missed.filter((i) => !back.shots.includes(i)), 3, near);
  }
  const videoChanged = JSON.stringify(next.renditions) !== JSON.stringify(plan.renditions);
  const audioMissed = report.misses.some((m) => m.kind === 'speech');
  if (audioMissed && next.audio) {
    // below the rate measured safe on every bench lecture, that rate first; then a pause gated
    // too eagerly can clip words: drop the gate before spending more bits
    next = next.audio.opus.bitrate < SPEECH_SAFE_BITRATE
      ? { ...next, audio: { ...next.audio, opus: { ...next.audio.opus, bitrate: SPEECH_SAFE_BITRATE } } }
      : next.audio.gate
      ? { ...next, audio: { ...next.audio, gate: undefined } }
      : { ...next, audio: { ...next.audio, opus: { ...next.audio.opus, bitrate: next.audio.opus.bitrate + 6000 } } };
  }
  const withAudio = audioMissed && !!next.audio;
  if (!videoChanged && !withAudio) return undefined;
  return { plan: next, only: videoChanged && r0 ? [r0] : [], withAudio };
}

/** Moves the renditions (or files) a re-encode is about to replace out of the package, into `prev`. */
async function keep(tmp: string, prev: string, ids: string[]): Promise<void> {
  await rm(prev, { recursive: true, force: true });
  await mkdir(prev, { recursive: true });
  for (const id of ids) {
    await mkdir(dirname(join(prev, id)), { recursive: true });
    await rename(join(tmp, id), join(prev, id));
  }
}

/**
 * Re-encodes the segments of rendition `rid` that show a shot whose settings changed between
 * `before` (what the package holds) and `after`; their old files go to `prev`. Undefined, with
 * every file put back, when a segment cannot be spliced: the caller re-encodes the rendition.
 */
async function spliceChanged(before: Plan, after: Plan, input: string, tmp: string, prev: string, rid: string,
  o: { preset: string; threads: number; headerQp: number; signal?: AbortSignal | undefined; log: Logger }): Promise<{ files: string[]; of: number; spans: Array<{ start: number; end: number }> } | undefined> {
  const { changedShots, firstFrameTime, segmentSpans, segmentsCovering, spliceSegments } = await import('./splice.js');
  const replaced: string[] = [];
  try {
    const { spans } = await segmentSpans(join(tmp, rid), before, rid, await firstFrameTime(input, after.baseFps, o.signal));
    const indices = segmentsCovering(spans, changedShots(before, after, rid));
    await spliceSegments(before, after, input, tmp, rid, indices, { preset: o.preset, threads: o.threads, headerQp: o.headerQp, signal: o.signal, keepDir: prev, replaced });
    o.log.info({ rendition: rid, segments: indices.length, of: spans.length }, 're-encoded only the segments of the changed shots');
    return { files: replaced, of: spans.length, spans: indices.map((i) => ({ start: spans[i]!.from, end: spans[i]!.to })) };
  } catch (err) {
    if (isYachayError(err, 'YCH_ERR_ABORTED')) throw err;
    o.log.warn({ err }, 'segments could not be spliced: re-encoding the whole rendition');
    for (const rel of replaced) {
      await rm(join(tmp, rel), { force: true });
      await rename(join(prev, rel), join(tmp, rel));
    }
    return undefined;
  }
}

/** Puts the kept renditions back in place of a re-encode that failed or measured worse. */
async function restore(tmp: string, prev: string, ids: string[]): Promise<void> {
  for (const id of ids) {
    await rm(join(tmp, id), { recursive: true, force: true });
    await rename(join(prev, id), join(tmp, id));
  }
  await rm(prev, { recursive: true, force: true });
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

/** "picture 0:12–0:20 SSIM 0.921 < 0.940, speech …" for logs and the CLI */
export function describeMisses(misses: readonly Miss[]): string {
  const clock = (t: number): string => `${Math.floor(t / 60)}:${String(Math.floor(t % 60)).padStart(2, '0')}`;
  const measure = { text: 'OCR', picture: 'SSIM', speech: 'STOI' } as const;
  return misses.map((m) => `${m.kind} ${clock(m.start)}–${clock(m.end)} ${measure[m.kind]} ${m.value.toFixed(3)} < ${m.floor.toFixed(3)}`
    + (m.ceiling !== undefined ? ` (the source allows ${m.ceiling.toFixed(3)})` : '')).join(', ') || 'none';
}

/** The face model, fed by the analysis decode; loaded on first use like the other models. */
async function openFaces(info: MediaInfo): Promise<ReturnType<typeof faceTap> & { loadMs: number; dispose: () => Promise<void> }> {
  const t0 = performance.now();
  const [{ faceTap: tapOf }, { loadManifest, openModel }] = await Promise.all([import('../models/face.js'), import('../models/manifest.js')]);
  const session = await openModel(loadManifest(), 'face');
  return { ...tapOf(session, info, { fps: 2 }), loadMs: performance.now() - t0, dispose: () => session.dispose() };
}
