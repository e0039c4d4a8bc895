import type { Db } from '../db/db.js';

/**
 * The durable job queue: one SQLite table (migration 1, `jobs`), shared by whoever enqueues
 * (HTTP upload, sync, CLI) and the workers that lease. A job is
 *
 *   queued ──lease──► leased ──complete──► done
 *     ▲                 │ fail: attempts+1, retry at now + backoff·2^(attempts-1)
 *     └─────────────────┤ release (shutdown): no attempt counted
 *                       └ fail with attempts ≥ max_attempts, or a permanent error ──► dead
 *
 * A lease is a promise to heartbeat before `lease_until`. A worker that dies (kill -9, power
 * cut, OOM killer) stops heartbeating, and the next lease() takes its job over. That lost run
 * counts as an attempt, so a recording that crashes the process every time ends in the dead
 * letter instead of crash-looping the box forever; reapExpired() moves such jobs there.
 *
 * Every change runs in a BEGIN IMMEDIATE transaction: the write lock is taken before the read,
 * so two processes on the same file never pick the same row, and a busy writer makes the other
 * wait (busy_timeout) instead of failing with SQLITE_BUSY_SNAPSHOT halfway.
 */
export type JobState = 'queued' | 'leased' | 'done' | 'dead';
export const JOB_STATES: readonly JobState[] = ['queued', 'leased', 'done', 'dead'];

export interface Job<P = unknown> {
  id: number;
  kind: string;
  payload: P;
  state: JobState;
  /** attempts that ended without success (failures and lost leases; not releases) */
  attempts: number;
  maxAttempts: number;
  /** epoch ms before which the job is not leased */
  runAfter: number;
  leaseUntil?: number | undefined;
  leasedBy?: string | undefined;
  lastError?: string | undefined;
  createdAt: number;
  updatedAt: number;
}

export interface EnqueueOptions {
  maxAttempts?: number;
  /** epoch ms; default now */
  runAfter?: number;
}

export interface QueueOptions {
  /** epoch ms; injectable so tests can move time */
  now?: () => number;
  /** used when enqueue() is not given maxAttempts (config jobs.maxAttempts) */
  maxAttempts?: number;
}

export interface FailOptions {
  /** no retry can help (the input is not media…): dead at once */
  permanent?: boolean;
}

interface JobRow {
  id: number; kind: string; payload_json: string; state: JobState; attempts: number; max_attempts: number;
  run_after: number; lease_until: number | null; leased_by: string | null; last_error: string | null;
  created_at: number; updated_at: number;
}

export const LEASE_EXPIRED = 'lease expired: the worker stopped heartbeating (crash, kill or power cut)';

/** longest last_error kept: ffmpeg messages can be long, a row should not be */
const MAX_ERROR = 4000;

function toJob(r: JobRow): Job {
  return {
    id: r.id, kind: r.kind, payload: JSON.parse(r.payload_json) as unknown, state: r.state,
    attempts: r.attempts, maxAttempts: r.max_attempts, runAfter: r.run_after,
    leaseUntil: r.lease_until ?? undefined, leasedBy: r.leased_by ?? undefined,
    lastError: r.last_error ?? undefined, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

export class JobQueue {
  private readonly now: () => number;
  private readonly defaultMaxAttempts: number;

  constructor(private readonly db: Db, opts: QueueOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.defaultMaxAttempts = opts.maxAttempts ?? 3;
  }

  private tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  enqueue(kind: string, payload: unknown, opts: EnqueueOptions = {}): number {
    const maxAttempts = opts.maxAttempts ?? this.defaultMaxAttempts;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError(`maxAttempts must be an integer >= 1 (got ${maxAttempts})`);
    if (!kind) throw new RangeError('job kind must not be empty');
    const now = this.now();
    const r = this.db.prepare(
      `INSERT INTO jobs (kind, payload_json, state, attempts, max_attempts, run_after, created_at, updated_at)
       VALUES (?, ?, 'queued', 0, ?, ?, ?, ?)`,
    ).run(kind, JSON.stringify(payload ?? null), maxAttempts, opts.runAfter ?? now, now, now);
    return Number(r.lastInsertRowid);
  }

  /**
   * Takes the oldest job that is due, or whose lease expired with attempts left, in one
   * statement. An expired lease counts as the attempt it was.
   */
  lease(workerId: string, leaseMs: number): Job | undefined {
    return this.tx(() => {
      const now = this.now();
      const row = this.db.prepare(
        `UPDATE jobs SET
           attempts = attempts + (state = 'leased'),
           last_error = CASE WHEN state = 'leased' THEN ? ELSE last_error END,
           state = 'leased', leased_by = ?, lease_until = ?, updated_at = ?
         WHERE id = (
           SELECT id FROM jobs
           WHERE (state = 'queued' AND run_after <= ?)
              OR (state = 'leased' AND lease_until < ? AND attempts + 1 < max_attempts)
           ORDER BY id LIMIT 1)
         RETURNING *`,
      ).get(LEASE_EXPIRED, workerId, now + leaseMs, now, now, now) as JobRow | undefined;
      return row ? toJob(row) : undefined;
    });
  }

  /**
   * Dead-letters jobs whose lease expired on their last attempt (lease() skips them) and
   * returns them, so the worker can tell their owners (e.g. mark the lesson failed).
   */
  reapExpired(): Job[] {
    return this.tx(() => {
      const now = this.now();
      const rows = this.db.prepare(
        `UPDATE jobs SET state = 'dead', attempts = attempts + 1, last_error = ?, lease_until = NULL, updated_at = ?
         WHERE state = 'leased' AND lease_until < ? AND attempts + 1 >= max_attempts
         RETURNING *`,
      ).all(LEASE_EXPIRED, now, now) as JobRow[];
      return rows.map(toJob);
    });
  }

  /** Extends our lease; false when the job is no longer ours (taken over, or finished). */
  heartbeat(id: number, workerId: string, leaseMs: number): boolean {
    const now = this.now();
    const r = this.db.prepare(
      `UPDATE jobs SET lease_until = ?, updated_at = ? WHERE id = ? AND state = 'leased' AND leased_by = ?`,
    ).run(now + leaseMs, now, id, workerId);
    return r.changes === 1;
  }

  /** false when the lease was lost before the work finished (someone else owns the job now) */
  complete(id: number, workerId: string): boolean {
    const now = this.now();
    const r = this.db.prepare(
      `UPDATE jobs SET state = 'done', lease_until = NULL, updated_at = ? WHERE id = ? AND state = 'leased' AND leased_by = ?`,
    ).run(now, id, workerId);
    return r.changes === 1;
  }

  /**
   * Counts a failed attempt. Returns the job as it is now ('queued' with its retry time, or
   * 'dead'), or undefined when the lease was lost.
   */
  fail(id: number, workerId: string, error: string, backoffMs: number, opts: FailOptions = {}): Job | undefined {
    return this.tx(() => {
      const cur = this.db.prepare(`SELECT attempts, max_attempts FROM jobs WHERE id = ? AND state = 'leased' AND leased_by = ?`)
        .get(id, workerId) as { attempts: number; max_attempts: number } | undefined;
      if (!cur) return undefined;
      const now = this.now();
      const attempts = cur.attempts + 1;
      const dead = opts.permanent === true || attempts >= cur.max_attempts;
      const runAfter = now + Math.max(0, backoffMs) * 2 ** (attempts - 1);
      const row = this.db.prepare(
        `UPDATE jobs SET state = ?, attempts = ?, last_error = ?, lease_until = NULL, leased_by = NULL,
           run_after = CASE WHEN ? THEN run_after ELSE ? END, updated_at = ?
         WHERE id = ? RETURNING *`,
      ).get(dead ? 'dead' : 'queued', attempts, error.slice(0, MAX_ERROR), dead ? 1 : 0, runAfter, now, id) as JobRow;
      return toJob(row);
    });
  }

  /** Shutdown: the job goes back to the queue, due at once, with no attempt counted. */
  release(id: number, workerId: string): boolean {
    const now = this.now();
    const r = this.db.prepare(
      `UPDATE jobs SET state = 'queued', lease_until = NULL, leased_by = NULL, run_after = ?, updated_at = ?
       WHERE id = ? AND state = 'leased' AND leased_by = ?`,
    ).run(now, now, id, workerId);
    return r.changes === 1;
  }

  /** A dead job back to the queue with fresh attempts (an operator fixed the cause). */
  retry(id: number): boolean {
    const now = this.now();
    const r = this.db.prepare(
      `UPDATE jobs SET state = 'queued', attempts = 0, run_after = ?, updated_at = ? WHERE id = ? AND state = 'dead'`,
    ).run(now, now, id);
    return r.changes === 1;
  }

  get(id: number): Job | undefined {
    const row = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return row ? toJob(row) : undefined;
  }

  list(filter: { state?: JobState; kind?: string; limit?: number } = {}): Job[] {
    const rows = this.db.prepare(
      `SELECT * FROM jobs WHERE (@state IS NULL OR state = @state) AND (@kind IS NULL OR kind = @kind) ORDER BY id LIMIT @limit`,
    ).all({ state: filter.state ?? null, kind: filter.kind ?? null, limit: filter.limit ?? -1 }) as JobRow[];
    return rows.map(toJob);
  }

  stats(): Record<JobState, number> {
    const out: Record<JobState, number> = { queued: 0, leased: 0, done: 0, dead: 0 };
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM jobs GROUP BY state').all() as Array<{ state: JobState; n: number }>;
    for (const r of rows) out[r.state] = r.n;
    return out;
  }
}
