import type { Db } from '../db/db.js';
import { YachayError } from '../errors.js';
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

interface Raw { id: number; topic: string; payload: Buffer; retain: number; kind: OutboxRow['kind']; bytes: number; created_at: number }

export class Outbox {
  /** rows dropped to stay under the bound since start (telemetry, then usage/feedback) */
  evicted = 0;
  private readonly limits: OutboxLimits;
  private listener: (() => void) | undefined;

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
    const id = this.db.transaction(() => {
      const r = this.db.prepare('INSERT INTO sync_outbox (topic, payload, retain, kind, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(topic, body, opts.retain ? 1 : 0, kind, body.length + topic.length, this.now());
      this.evict();
      return Number(r.lastInsertRowid);
    })();
    this.listener?.();
    return id;
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

  /** the oldest rows, in the order they were added */
  peek(limit = 100): OutboxRow[] {
    return (this.db.prepare('SELECT * FROM sync_outbox ORDER BY id LIMIT ?').all(limit) as Raw[]).map((r) => ({
      id: r.id, topic: r.topic, payload: r.payload, retain: r.retain === 1, kind: r.kind, bytes: r.bytes, createdAt: r.created_at,
    }));
  }

  /** only after the hub's PUBACK */
  remove(id: number): void {
    this.db.prepare('DELETE FROM sync_outbox WHERE id = ?').run(id);
  }

  size(): { rows: number; bytes: number } {
    const t = this.db.prepare('SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b FROM sync_outbox').get() as { n: number; b: number };
    return { rows: t.n, bytes: t.b };
  }
}
