import type pg from 'pg';
import { Counter, Gauge, Registry } from 'prom-client';

/** What the central team sees of each school's box (fleet page, /api/fleet, /metrics). */
export interface FleetBox {
  school: string; name: string; lastSeen: string | null; online: boolean; version: string | null;
  diskFreeBytes: number | null; tempC: number | null; lessonsSynced: number | null; pending: number | null;
  wanBytesLastNight: number | null; errors: unknown; enrolled: boolean; revoked: boolean;
}

const n = (x: string | number | null): number | null => (x === null ? null : Number(x));

export async function fleet(pool: pg.Pool): Promise<FleetBox[]> {
  const r = await pool.query<{
    id: string; name: string; revoked_at: Date | null; school: string | null; last_seen: Date | null; online: boolean | null;
    version: string | null; disk_free_bytes: string | null; temp_c: number | null; lessons_synced: number | null;
    pending: number | null; wan_bytes_last_night: string | null; errors: unknown; password_hash: string | null;
  }>(`SELECT s.id, s.name, s.revoked_at, b.school, b.last_seen, b.online, b.version, b.disk_free_bytes, b.temp_c,
             b.lessons_synced, b.pending, b.wan_bytes_last_night, b.errors, b.password_hash
        FROM schools s LEFT JOIN boxes b ON b.school = s.id ORDER BY s.id`);
  return r.rows.map((x) => ({
    school: x.id, name: x.name, lastSeen: x.last_seen?.toISOString() ?? null, online: !x.revoked_at && !!x.online,
    version: x.version, diskFreeBytes: n(x.disk_free_bytes), tempC: x.temp_c, lessonsSynced: x.lessons_synced,
    pending: x.pending, wanBytesLastNight: n(x.wan_bytes_last_night), errors: x.errors ?? null,
    enrolled: !!x.school && !!x.password_hash, revoked: !!x.revoked_at,
  }));
}

export interface HubMetrics { registry: Registry; enrollFailures: Counter<'code'> }

export function hubMetrics(pool: pg.Pool, queueDepth: () => Promise<number>): HubMetrics {
  const registry = new Registry();
  const enrollFailures = new Counter({ name: 'yachay_hub_enroll_failures_total', help: 'refused enrollment attempts by error code', labelNames: ['code'], registers: [registry] });
  new Gauge({
    name: 'yachay_hub_boxes', help: 'boxes by state (online, enrolled)', labelNames: ['state'], registers: [registry],
    async collect() {
      const r = await pool.query<{ online: string; total: string }>(
        `SELECT count(*) FILTER (WHERE b.online) AS online, count(*) AS total FROM boxes b JOIN schools s ON s.id = b.school
          WHERE s.revoked_at IS NULL AND b.password_hash IS NOT NULL`);
      this.set({ state: 'online' }, Number(r.rows[0]!.online));
      this.set({ state: 'total' }, Number(r.rows[0]!.total));
    },
  });
  new Gauge({
    name: 'yachay_hub_lessons', help: 'lessons in the catalog', registers: [registry],
    async collect() { this.set(Number((await pool.query<{ c: string }>('SELECT count(*) AS c FROM lessons')).rows[0]!.c)); },
  });
  new Gauge({
    name: 'yachay_hub_queue_depth', help: 'encode jobs waiting in hub-optimize', registers: [registry],
    async collect() { this.set(await queueDepth()); },
  });
  return { registry, enrollFailures };
}
