import type { Db } from '../db/db.js';
import { YachayError } from '../errors.js';
import { isDiskFull } from '../util/atomic.js';
import { upKind } from './topics.js';

/**
 * Up-messages for the hub, kept in SQLite until the hub's broker has acknowledged them (PUBACK):
 * a box may be offline for weeks and lose power any time. Bounded, because a Pi's SD card is
 * small: when full, the oldest telemetry goes first, then usage/feedback; acks, reports and
 * requests are never dropped (they are few and the hub needs them).
 */
export interface OutboxRow { id: number; topic: string; payload: Buffer; retain: boolean; kind: 'telemetry' | 'other' | 'keep'; bytes: number; createdAt: number }

export interface OutboxLimits { maxRows: number; maxBytes: number }

export const DEFAULT_OUTBOX_LIMITS: OutboxLimits = { maxRows: 10_000, maxBytes: 5 * 1024 * 1024 };

/** rows held in memory while the disk refuses them; a full disk is itself what the hub must hear */
const MAX_HELD = 200;

/** SQLite's answers for a disk that has no room left (or refuses writes), or the OS's own */
function diskRefused(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? '';
  return code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR') || isDiskFull(err);
}

interface Raw { id: number; topic: string; payload: Buffer; retain: number; kind: OutboxRow['kind']; bytes: number; created_at: number }

export class Outbox {
  /** rows dropped to stay under the bound since start (telemetry, then usage/feedback) */
  evicted = 0;
  private readonly limits: OutboxLimits;
  private listener: (() => void) | undefined;
  /**
   * Up-messages the database could not take (disk full): kept in memory, sent like the rest,
   * lost only if the power goes before the hub acknowledges them. Negative ids tell them apart.
   */
  private held: OutboxRow[] = [];
  private nextHeld = -1;
  /** stored rows the hub acknowledged whose DELETE the full disk refused (retried on each peek) */
  private acked = new Set<number>();
  /** called once per full-disk spell, so the log says it without repeating it per message */
  onDiskRefused: ((err: unknown) => void) | undefined;

  constructor(private readonly db: Db, private readonly school: string, limits: Partial<OutboxLimits> = {}, private readonly now: () => number = Date.now) {
    this.limits = { ...DEFAULT_OUTBOX_LIMITS, ...limits };
  }

  /** called after each add: the bridge drains when connected */
  onAdd(fn: () => void): void { this.listener = fn; }

  add(topic: string, payload: string | Buffer, opts: { retain?: boolean } = {}): number {
    const kind = upKind(topic, this.school);
    // a down-topic here would be published back to the hub: the loop the bridge must not make
    if (!kind) throw new YachayError('YCH_ERR_USAGE', `${topic} is not an up-topic of school ${this.school}`);
    const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
    let id: number;
    try {
      id = this.db.transaction(() => {
        const r = this.db.prepare('INSERT INTO sync_outbox (topic, payload, retain, kind, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)')
          .run(topic, body, opts.retain ? 1 : 0, kind, body.length + topic.length, this.now());
        this.evict();
        return Number(r.lastInsertRowid);
      })();
    } catch (err) {
      if (!diskRefused(err)) throw err;
      if (this.held.length === 0) this.onDiskRefused?.(err);
      id = this.hold({ id: this.nextHeld--, topic, payload: body, retain: opts.retain === true, kind, bytes: body.length + topic.length, createdAt: this.now() });
    }
    this.listener?.();
    return id;
  }

  /** bounded like the table: telemetry leaves first, then usage/feedback; acks and reports stay */
  private hold(row: OutboxRow): number {
    this.held.push(row);
    for (const kind of ['telemetry', 'other'] as const) {
      while (this.held.length > MAX_HELD) {
        const i = this.held.findIndex((r) => r.kind === kind);
        if (i < 0) break;
        this.held.splice(i, 1);
        this.evicted++;
      }
    }
    return row.id;
  }

  private evict(): void {
    const total = (): { n: number; b: number } => this.db.prepare('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM sync_outbox').get() as { n: number; b: number };
    let t = total();
    for (const kind of ['telemetry', 'other'] as const) {
      while (t.n > this.limits.maxRows || t.b > this.limits.maxBytes) {
        // oldest first, in batches: one add never costs more than a few statements
        const over = Math.max(1, t.n - this.limits.maxRows);
        const r = this.db.prepare('DELETE FROM sync_outbox WHERE id IN (SELECT id FROM sync_outbox WHERE kind = ? ORDER BY id LIMIT ?)').run(kind, Math.min(over, 500));
        if (r.changes === 0) break;
        this.evicted += r.changes;
        t = total();
      }
    }
  }

  /** the oldest rows, in the order they were added (the stored ones were added before the held) */
  peek(limit = 100): OutboxRow[] {
    for (const id of [...this.acked]) this.remove(id);
    const stored = (this.db.prepare('SELECT * FROM sync_outbox ORDER BY id LIMIT ?').all(limit + this.acked.size) as Raw[])
      .filter((r) => !this.acked.has(r.id)).slice(0, limit).map((r) => ({
        id: r.id, topic: r.topic, payload: r.payload, retain: r.retain === 1, kind: r.kind, bytes: r.bytes, createdAt: r.created_at,
      }));
    return [...stored, ...this.held.slice(0, Math.max(0, limit - stored.length))];
  }

  /** only after the hub's PUBACK */
  remove(id: number): void {
    if (id < 0) { this.held = this.held.filter((r) => r.id !== id); return; }
    try {
      this.db.prepare('DELETE FROM sync_outbox WHERE id = ?').run(id);
      this.acked.delete(id);
    } catch (err) {
      // the hub has it: never send it twice, delete it when the disk lets us
      if (!diskRefused(err)) throw err;
      this.acked.add(id);
    }
  }

  size(): { rows: number; bytes: number; held: number } {
    const t = this.db.prepare('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM sync_outbox').get() as { n: number; b: number };
    return { rows: t.n + this.held.length, bytes: t.b + this.held.reduce((n, r) => n + r.bytes, 0), held: this.held.length };
  }
}
