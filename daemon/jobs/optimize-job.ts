import { readdir, rm } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { OptimizeConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { DataPaths } from '../paths.js';
import type { NativeKernels } from '../analysis/native.js';
import { loadNative } from '../analysis/native.js';
import { YachayError } from '../errors.js';
import { optimize } from '../optimize/optimizer.js';
import { MAX_BOOST, type Boost } from '../optimize/boost.js';
import type { OptimizeResult } from '../optimize/optimizer.js';
import type { Progress } from '../optimize/progress.js';
import { LESSON_ID } from '../catalog/lessons.js';
import type { Lessons, RenditionInfo } from '../catalog/lessons.js';
import type { Job } from './queue.js';
import type { EncodeRow } from '../models/rate/sweep.js';
import type { JobContext, JobHandler } from './worker.js';

/**
 * Job kind 'optimize': turns a lesson's recording into its HLS package at
 * store/<lessonId>/ and the lesson row into 'ready'. The optimizer writes into
 * store/.<lessonId>.tmp-<pid> and renames it into place, so a crash leaves only that temp
 * folder, which the next run of the lesson removes before it starts.
 */
export const OPTIMIZE = 'optimize';

export interface OptimizePayload {
  lessonId: string;
  /** the recording; relative paths are inside the data dir's sources folder */
  source: string;
  /**
   * "Volver a codificar con más calidad" (1..MAX_BOOST): more bits where the published package
   * missed its floors, and more attempts (optimize/boost.ts)
   */
  boost?: number | undefined;
  /**
   * where the boost goes (seconds; kind text|picture|speech), when people said where
   * (feedback/routes.ts); absent: where the published package missed its floors
   */
  spans?: Array<{ start: number; end: number; kind: string }> | undefined;
}

export interface OptimizeJobDeps {
  lessons: Lessons;
  paths: DataPaths;
  cfg: Readonly<OptimizeConfig>;
  /** default: loadNative() on the first job */
  kernels?: NativeKernels;
  /** where the lowest rendition's measured encodes are kept for `yachay models train` */
  recordEncodes?: ((rows: EncodeRow[]) => void) | undefined;
  /** the box's data folder: its own rate model version */
  dataDir?: string | undefined;
}

export function parsePayload(p: unknown): OptimizePayload {
  const o = p as Partial<OptimizePayload> | null;
  if (!o || typeof o.lessonId !== 'string' || !LESSON_ID.test(o.lessonId) || typeof o.source !== 'string' || !o.source) {
    throw new YachayError('YCH_ERR_USAGE', `optimize job needs {lessonId, source} with a valid lesson id (got ${JSON.stringify(p)})`);
  }
  if (o.boost !== undefined && (!Number.isInteger(o.boost) || o.boost < 0 || o.boost > MAX_BOOST)) {
    throw new YachayError('YCH_ERR_USAGE', `optimize job boost must be an integer 0..${MAX_BOOST} (got ${JSON.stringify(o.boost)})`);
  }
  const spans = Array.isArray(o.spans) ? o.spans : undefined;
  if (o.spans !== undefined && !spans?.every((x) => Number.isFinite(x?.start) && Number.isFinite(x?.end) && typeof x?.kind === 'string')) {
    throw new YachayError('YCH_ERR_USAGE', `optimize job spans must be [{start, end, kind}] (got ${JSON.stringify(o.spans)})`);
  }
  return { lessonId: o.lessonId, source: o.source, ...(o.boost ? { boost: o.boost } : {}), ...(spans?.length ? { spans } : {}) };
}

/** Forwards the optimizer's stage-weighted progress as an overall fraction, at most ~1 per percent. */
export function forwardingProgress(report: (fraction: number, stage: string) => void): Progress {
  let base = 0; let weight = 0; let stage = ''; let last = -1;
  const send = (f: number, force: boolean): void => {
    const total = Math.min(1, base + weight * Math.min(1, Math.max(0, f)));
    const pct = Math.floor(total * 100);
    if (!force && pct === last) return;
    last = pct;
    report(total, stage);
  };
  return {
    stage(name, w) { base += weight; weight = w; stage = name; send(0, true); },
    update(f) { send(f, false); },
    done() { base = 1; weight = 0; send(1, true); },
  };
}

/** Removes temp folders a killed run of this lesson left in the store (`.<id>.tmp-<pid>`). */
export async function removeStaleTemp(store: string, lessonId: string, log?: Logger): Promise<string[]> {
  const prefix = `.${lessonId}.tmp-`;
  const names = await readdir(store).catch(() => [] as string[]);
  const stale = names.filter((n) => n.startsWith(prefix) && n !== `${prefix}${process.pid}`);
  for (const n of stale) {
    await rm(join(store, n), { recursive: true, force: true });
    log?.info({ folder: n }, 'removed a temp folder left by an interrupted run');
  }
  return stale;
}

export function renditionsOf(result: OptimizeResult): RenditionInfo[] {
  const pkg = result.package;
  if (!pkg) return [];
  return [...pkg.video, ...pkg.audio].map((r) => ({
    id: r.id, bytes: r.bytes, kbps: Math.round(r.averageBps / 100) / 10, playlist: r.playlist,
  }));
}

export function createOptimizeHandler(deps: OptimizeJobDeps): JobHandler {
  const { lessons, paths, cfg } = deps;
  // two jobs for one lesson in this process would share its temp folder: the second waits
  const active = new Set<string>();
  let kernels = deps.kernels;

  return {
    async run(job: Job, ctx: JobContext): Promise<void> {
      const { lessonId, source, boost, spans: asked } = parsePayload(job.payload);
      const lesson = lessons.get(lessonId);
      if (!lesson) {
        ctx.log.warn({ lessonId }, 'lesson was removed before it was optimized; nothing to do');
        return;
      }
      if (active.has(lessonId)) {
        throw new YachayError('YCH_ERR_IO', `lesson ${lessonId} is already being optimized by another job; will retry`);
      }
      active.add(lessonId);
      try {
        if (!kernels) {
          kernels = loadNative();
          ctx.log.info({ isa: kernels.isa() }, 'native kernels loaded');
        }
        // a published lesson stays 'ready' (and playable) while it is coded again: the new package
        // replaces the old one in one rename at publish
        if (!lesson.path) lessons.setStatus(lessonId, 'processing');
        await removeStaleTemp(paths.store, lessonId, ctx.log);
        const input = isAbsolute(source) ? source : resolve(paths.sources, source);
        // more bits where the package the teacher saw missed; everywhere when it missed nothing
        const spans = asked ?? (lesson.misses?.length ? lesson.misses.map((m) => ({ start: m.start, end: m.end, kind: m.kind })) : undefined);
        const req: { boost?: Boost } = boost ? { boost: { level: boost, spans } } : {};
        const result = await optimize({ input, out: join(paths.store, lessonId), ...req }, {
          cfg, log: ctx.log, kernels, signal: ctx.signal, dataDir: deps.dataDir,
          progress: forwardingProgress((f, stage) => ctx.progress(f, stage)),
        });
        const ready = lessons.markReady(lessonId, {
          durationS: result.input.duration,
          path: lessonId,
          renditions: renditionsOf(result),
          report: {
            attempts: result.attempts, timings: result.timings, verify: result.verify ?? null, boost: boost ?? 0,
            shots: result.shots.map((s) => ({ start: s.start, end: s.end, cls: s.cls })),
          },
          // published under the floor in places: ready all the same, and the teacher is told where
          misses: result.misses,
        });
        if (result.misses.length) ctx.log.warn({ lessonId, misses: result.misses.length }, 'lesson published with parts under their quality floor');
        if (!ready) ctx.log.warn({ lessonId }, 'lesson removed while it was optimized; its package stays in the store');
        if (deps.recordEncodes && result.observed.length) {
          // training data, not the lesson: a failure here is logged, the lesson stays ready
          try {
            deps.recordEncodes(result.observed.map((r) => ({ ...r, lesson: lessonId })));
          } catch (err) {
            ctx.log.warn({ err, lessonId }, 'encodes not recorded for the rate model');
          }
        }
      } finally {
        active.delete(lessonId);
      }
    },

    requeued(job: Job): void {
      const p = job.payload as Partial<OptimizePayload> | null;
      if (typeof p?.lessonId !== 'string') return;
      // back to 'queued' so the teacher sees it waiting; the last error tells why (a published
      // lesson keeps playing: only the error is noted)
      const published = !!lessons.get(p.lessonId)?.path;
      lessons.setStatus(p.lessonId, published ? 'ready' : 'queued', job.lastError);
    },

    dead(job: Job): void {
      const p = job.payload as Partial<OptimizePayload> | null;
      if (typeof p?.lessonId !== 'string') return;
      // a re-encode that failed leaves the published package in place: the lesson stays ready
      if (lessons.get(p.lessonId)?.path) {
        lessons.setStatus(p.lessonId, 'ready', `re-encode failed, the previous package stays: ${job.lastError ?? 'optimizing failed'}`);
        return;
      }
      lessons.setStatus(p.lessonId, 'failed', job.lastError ?? 'optimizing failed');
    },
  };
}
