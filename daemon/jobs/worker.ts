import { hostname } from 'node:os';
import type { JobsConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Service } from '../service.js';
import { isYachayError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import type { Job, JobQueue, JobState } from './queue.js';

/**
 * Runs the queue: `cfg.workers` loops, each leasing one job at a time and running the
 * handler for its kind with its own AbortController. While a job runs its lease is
 * heartbeated every leaseMs/3; if the heartbeat finds the job taken over (this process stalled
 * longer than a lease), the run is aborted and the job left to its new owner.
 *
 * stop() aborts the running jobs (the optimizer SIGINTs its ffmpeg process group, SIGKILL
 * after a grace period), hands them back to the queue without counting an attempt, and
 * resolves when every loop has ended.
 */
export interface JobEvent {
  type: 'job';
  id: number;
  kind: string;
  state: JobState;
  /** 0..1 over the whole job, while it runs */
  progress?: number | undefined;
  /** the handler's current stage (probe, analyse, encode…) */
  stage?: string | undefined;
  lessonId?: string | undefined;
  error?: string | undefined;
}

export interface JobContext {
  signal: AbortSignal;
  log: Logger;
  /** this run is the job's last chance: a failure now sends it to the dead letter */
  lastAttempt: boolean;
  /** report progress (0..1 overall) and optionally the stage name; events are throttled by the handler */
  progress(fraction: number, stage?: string): void;
}

export interface JobHandler {
  run(job: Job, ctx: JobContext): Promise<void>;
  /** the job ended in the dead letter (attempts used up, permanent error, or lost leases) */
  dead?(job: Job): void | Promise<void>;
  /** the run ended without success and the job waits in the queue (retry or shutdown) */
  requeued?(job: Job): void | Promise<void>;
}

export interface WorkerOptions {
  queue: JobQueue;
  /** the queue's slice: the governor is its own service */
  cfg: Readonly<Omit<JobsConfig, 'governor'>>;
  handlers: Readonly<Record<string, JobHandler>>;
  log: Logger;
  onEvent?: ((e: JobEvent) => void) | undefined;
  /** how long an idle loop sleeps before looking again (wake() cuts it short) */
  pollMs?: number;
  /** distinguishes this process's loops in `jobs.leased_by` */
  workerId?: string;
}

/** errors no retry can fix: the recording itself is the problem, or the request was wrong */
const PERMANENT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'YCH_ERR_INPUT_MISSING', 'YCH_ERR_INPUT_NOT_MEDIA', 'YCH_ERR_INPUT_CORRUPT', 'YCH_ERR_INPUT_EMPTY',
  'YCH_ERR_INPUT_TOO_LARGE', 'YCH_ERR_OUTPUT_INSIDE_INPUT', 'YCH_ERR_USAGE', 'YCH_ERR_CONFIG', 'YCH_ERR_ENCODE_REFUSED',
]);

export function isPermanent(err: unknown): boolean {
  return isYachayError(err) && PERMANENT.has(err.code);
}

function errorText(err: unknown): string {
  if (isYachayError(err)) return `${err.code}: ${err.message}`;
  return (err as Error)?.message ?? String(err);
}

function lessonOf(job: Job): string | undefined {
  const p = job.payload as { lessonId?: unknown } | null;
  return typeof p?.lessonId === 'string' ? p.lessonId : undefined;
}

class LeaseLost extends Error {
  constructor(id: number) { super(`job ${id}: lease lost to another worker`); }
}

class Shutdown extends Error {
  constructor() { super('worker stopping'); }
}

/** the job's subject is gone (a teacher deleted the lesson): stop, and leave no retry */
class Cancelled extends Error {
  constructor(id: number) { super(`job ${id} cancelled: its lesson was removed`); }
}

export class WorkerService implements Service {
  readonly name = 'worker';
  private readonly pollMs: number;
  private readonly baseId: string;
  private loops: Promise<void>[] = [];
  private readonly running = new Map<number, AbortController>();
  /** job id → the run in this process, settled once its handler and the queue update are done */
  private readonly runs = new Map<number, Promise<void>>();
  private waiters = new Set<() => void>();
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private errorsInARow = 0;

  constructor(private readonly opts: WorkerOptions) {
    this.pollMs = opts.pollMs ?? 500;
    this.baseId = opts.workerId ?? `${hostname()}:${process.pid}`;
  }

  private get leaseMs(): number { return this.opts.cfg.leaseSeconds * 1000; }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.loops.length || this.stopping || signal?.aborted) return;
    this.opts.log.info({ workers: this.opts.cfg.workers, kinds: Object.keys(this.opts.handlers), leaseS: this.opts.cfg.leaseSeconds }, 'worker loops starting');
    for (let i = 0; i < this.opts.cfg.workers; i++) this.loops.push(this.loop(`${this.baseId}:${i}`));
  }

  /** a job was enqueued: idle loops look now instead of at their next poll */
  wake(): void {
    const ws = this.waiters; this.waiters = new Set();
    for (const w of ws) w();
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      for (const ac of this.running.values()) ac.abort(new Shutdown());
      this.wake();
      await Promise.all(this.loops);
      this.loops = [];
    })();
    return this.stopped;
  }

  healthy(): boolean {
    return this.loops.length > 0 && !this.stopping && this.errorsInARow < 3;
  }

  /**
   * Aborts these jobs if they run in this process (the same path as a shutdown: SIGINT to the
   * ffmpeg group, SIGKILL after the grace) and resolves once each run has ended, so the caller
   * can remove what the job was writing. Jobs not running here are left alone.
   */
  async cancel(ids: Iterable<number>): Promise<number[]> {
    const waits: Promise<void>[] = []; const hit: number[] = [];
    for (const id of ids) {
      const ac = this.running.get(id);
      if (!ac) continue;
      if (!ac.signal.aborted) ac.abort(new Cancelled(id));
      hit.push(id);
      waits.push(this.runs.get(id) ?? Promise.resolve());
    }
    await Promise.all(waits);
    return hit;
  }

  /** job ids running in this process now */
  runningJobs(): number[] {
    return [...this.running.keys()];
  }

  private emit(e: Omit<JobEvent, 'type'>): void {
    try {
      this.opts.onEvent?.({ type: 'job', ...e });
    } catch (err) {
      // a listener's bug must not stop transcoding
      this.opts.log.error({ err }, 'job event listener threw');
    }
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => { clearTimeout(timer); this.waiters.delete(done); resolve(); };
      // not unref'd: a running worker keeps the process alive, like a listening server; stop() wakes it
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private async loop(workerId: string): Promise<void> {
    while (!this.stopping) {
      let job: Job | undefined;
      try {
        for (const dead of this.opts.queue.reapExpired()) await this.onDead(dead);
        job = this.opts.queue.lease(workerId, this.leaseMs);
        this.errorsInARow = 0;
      } catch (err) {
        // the database is locked or gone: say so, wait, try again (stop() ends the loop)
        this.errorsInARow++;
        this.opts.log.error({ err, workerId }, 'cannot lease a job');
        await this.sleep(this.pollMs * 4);
        continue;
      }
      if (!job) { await this.sleep(this.pollMs); continue; }
      const run = this.runJob(job, workerId);
      this.runs.set(job.id, run.then(() => undefined, () => undefined));
      try {
        await run;
      } catch (err) {
        // only the queue's own writes can land here; the lease runs out and another run retries
        this.errorsInARow++;
        this.opts.log.error({ err, jobId: job.id }, 'cannot record the end of a job');
        await this.sleep(this.pollMs * 4);
      } finally {
        this.runs.delete(job.id);
      }
    }
  }

  private async runJob(job: Job, workerId: string): Promise<void> {
    const { queue, log: root } = this.opts;
    const log = root.child({ jobId: job.id, kind: job.kind });
    const lessonId = lessonOf(job);
    const handler = this.opts.handlers[job.kind];
    const ac = new AbortController();
    this.running.set(job.id, ac);
    const beat = setInterval(() => {
      let ours = false;
      try { ours = queue.heartbeat(job.id, workerId, this.leaseMs); } catch (err) {
        // one missed beat is not a lost lease; the next one may get through
        log.warn({ err }, 'heartbeat failed');
        return;
      }
      if (!ours) ac.abort(new LeaseLost(job.id));
    }, Math.max(50, Math.floor(this.leaseMs / 3)));
    beat.unref();

    log.info({ attempt: job.attempts + 1, of: job.maxAttempts, workerId }, 'job started');
    this.emit({ id: job.id, kind: job.kind, state: 'leased', progress: 0, lessonId });
    const t0 = performance.now();
    try {
      if (!handler) throw Object.assign(new Error(`no handler for job kind "${job.kind}"`), { permanent: true });
      await handler.run(job, {
        signal: ac.signal, log,
        lastAttempt: job.attempts + 1 >= job.maxAttempts,
        progress: (fraction, stage) => this.emit({ id: job.id, kind: job.kind, state: 'leased', progress: fraction, stage, lessonId }),
      });
      // a handler that returned has done its work, even if stop() came meanwhile
      clearInterval(beat);
      if (queue.complete(job.id, workerId)) {
        log.info({ ms: Math.round(performance.now() - t0) }, 'job done');
        this.emit({ id: job.id, kind: job.kind, state: 'done', progress: 1, lessonId });
      } else {
        log.warn('job finished after its lease was lost; the new owner decides its state');
      }
    } catch (err) {
      clearInterval(beat);
      const reason: unknown = ac.signal.aborted ? ac.signal.reason : undefined;
      if (reason instanceof LeaseLost) {
        log.warn('lease lost (this process stalled longer than a lease); job left to its new owner');
      } else if (reason instanceof Cancelled) {
        // the canceller removes the row; should it not, the job must not come back by itself
        queue.fail(job.id, workerId, reason.message, 0, { permanent: true });
        log.info('job cancelled: its lesson was removed');
      } else if (reason instanceof Shutdown) {
        queue.release(job.id, workerId);
        log.info('job released for the next start');
        const now = queue.get(job.id);
        if (now) await this.call(() => handler?.requeued?.(now), log);
        this.emit({ id: job.id, kind: job.kind, state: 'queued', lessonId });
      } else {
        const permanent = isPermanent(err) || (err as { permanent?: unknown })?.permanent === true;
        const after = queue.fail(job.id, workerId, errorText(err), this.opts.cfg.backoffSeconds * 1000, { permanent });
        if (!after) {
          log.warn({ err }, 'job failed after its lease was lost');
        } else if (after.state === 'dead') {
          log.error({ err, attempts: after.attempts }, 'job failed for good (dead letter)');
          await this.onDead(after);
        } else {
          log.warn({ err, attempts: after.attempts, retryInS: Math.round((after.runAfter - after.updatedAt) / 1000) }, 'job failed, will retry');
          await this.call(() => handler?.requeued?.(after), log);
          this.emit({ id: job.id, kind: job.kind, state: 'queued', lessonId, error: after.lastError });
        }
      }
    } finally {
      clearInterval(beat);
      this.running.delete(job.id);
    }
  }

  private async onDead(job: Job): Promise<void> {
    const log = this.opts.log.child({ jobId: job.id, kind: job.kind });
    if (job.lastError) log.error({ error: job.lastError, attempts: job.attempts }, 'job in the dead letter');
    await this.call(() => this.opts.handlers[job.kind]?.dead?.(job), log);
    this.emit({ id: job.id, kind: job.kind, state: 'dead', lessonId: lessonOf(job), error: job.lastError });
  }

  /** handler callbacks must not take the loop down with them */
  private async call(fn: () => void | Promise<void>, log: Logger): Promise<void> {
    try { await fn(); } catch (err) { log.error({ err }, 'job handler callback failed'); }
  }
}
