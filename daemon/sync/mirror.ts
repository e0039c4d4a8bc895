import type { Db } from '../db/db.js';

/**
 * The last known catalog and assignments from the hub's retained messages, in SQLite: a school
 * whose link is down for days still sees (and can request) what the hub offers, and the sync
 * engine knows what to fetch without asking the hub again.
 */
export interface CatalogEntry {
  id: string;
  title: string;
  channel: string;
  version: number;
  bytes: number;
  durationS: number;
  publishedAt: string;
  manifest: string;
}

export interface MirrorRow { topic: string; kind: 'catalog' | 'assign'; entry: CatalogEntry }

const ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

function parseEntry(payload: Buffer | string, id: string): CatalogEntry | undefined {
  try {
    const e = JSON.parse(payload.toString()) as Partial<CatalogEntry>;
    // the entry's id must be the topic's: a message cannot make the box fetch another lesson
    if (e.id !== id || !ID.test(id) || typeof e.version !== 'number' || typeof e.manifest !== 'string') return undefined;
    return {
      id, title: String(e.title ?? id), channel: String(e.channel ?? ''), version: e.version, bytes: Number(e.bytes ?? 0),
      durationS: Number(e.durationS ?? 0), publishedAt: String(e.publishedAt ?? ''), manifest: e.manifest,
    };
  } catch {
    return undefined;
  }
}

export class CatalogMirror {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  /** a retained catalog or assign message; an empty payload withdraws the entry. Returns false when ignored. */
  apply(topic: string, kind: 'catalog' | 'assign', id: string, payload: Buffer): boolean {
    if (payload.length === 0) {
      this.db.prepare('DELETE FROM hub_catalog WHERE topic = ?').run(topic);
      return true;
    }
    const e = parseEntry(payload, id);
    if (!e) return false;
    this.db.prepare(`INSERT INTO hub_catalog (topic, kind, lesson_id, channel, version, payload, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (topic) DO UPDATE SET lesson_id = excluded.lesson_id, channel = excluded.channel, version = excluded.version,
        payload = excluded.payload, updated_at = excluded.updated_at`).run(topic, kind, id, e.channel, e.version, JSON.stringify(e), this.now());
    return true;
  }

  list(): MirrorRow[] {
    const rows = this.db.prepare('SELECT topic, kind, payload FROM hub_catalog ORDER BY lesson_id, kind').all() as Array<{ topic: string; kind: 'catalog' | 'assign'; payload: string }>;
    return rows.map((r) => ({ topic: r.topic, kind: r.kind, entry: JSON.parse(r.payload) as CatalogEntry }));
  }

  /** the newest version the hub offers of a lesson, by any route */
  get(id: string): CatalogEntry | undefined {
    const r = this.db.prepare('SELECT payload FROM hub_catalog WHERE lesson_id = ? ORDER BY version DESC LIMIT 1').get(id) as { payload: string } | undefined;
    return r ? JSON.parse(r.payload) as CatalogEntry : undefined;
  }

  request(id: string, by: string | undefined): void {
    this.db.prepare('INSERT INTO sync_requests (lesson_id, by, at) VALUES (?, ?, ?) ON CONFLICT (lesson_id) DO NOTHING').run(id, by ?? null, this.now());
  }

  requests(): Array<{ id: string; by: string | null; at: number }> {
    return (this.db.prepare('SELECT lesson_id AS id, by, at FROM sync_requests ORDER BY at').all()) as Array<{ id: string; by: string | null; at: number }>;
  }

  fulfilled(id: string): void {
    this.db.prepare('DELETE FROM sync_requests WHERE lesson_id = ?').run(id);
  }

  getState(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM sync_state WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setState(key: string, value: string): void {
    this.db.prepare('INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }
}
