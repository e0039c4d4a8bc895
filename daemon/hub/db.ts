import pg from 'pg';
import type { Logger } from '../log.js';
import { YachayError } from '../errors.js';

/**
 * The hub's catalog in PostgreSQL. Migrations live here, in order, each applied in one
 * transaction under an advisory lock, so several hubs starting on one database agree.
 */
const MIGRATIONS: string[] = [
  // 1: schools, enrollment, boxes, lessons, what schools asked for and reported
  `CREATE TABLE schools (
     id text PRIMARY KEY, name text NOT NULL, channels text[] NOT NULL DEFAULT '{}',
     created_at timestamptz NOT NULL DEFAULT now(), revoked_at timestamptz);
   CREATE TABLE enroll_codes (
     code_sha256 text PRIMARY KEY, school text NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
     created_at timestamptz NOT NULL DEFAULT now(), expires_at timestamptz NOT NULL,
     used_at timestamptz, used_by text);
   CREATE TABLE boxes (
     school text PRIMARY KEY REFERENCES schools(id) ON DELETE CASCADE, username text NOT NULL UNIQUE,
     password_hash text, hostname text, enrolled_at timestamptz NOT NULL DEFAULT now(),
     online boolean NOT NULL DEFAULT false, last_seen timestamptz, version text,
     disk_free_bytes bigint, temp_c real, lessons_synced integer, pending integer,
     wan_bytes_last_night bigint, errors jsonb);
   CREATE TABLE lessons (
     id text PRIMARY KEY, title text NOT NULL, channel text NOT NULL, version integer NOT NULL,
     bytes bigint NOT NULL, duration_s real NOT NULL, published_at timestamptz NOT NULL,
     manifest_sha256 text NOT NULL);
   CREATE TABLE assignments (
     school text NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
     lesson_id text NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
     assigned_at timestamptz NOT NULL DEFAULT now(), acked_version integer, acked_at timestamptz,
     PRIMARY KEY (school, lesson_id));
   CREATE TABLE requests (
     id bigserial PRIMARY KEY, school text NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
     lesson_id text NOT NULL, requested_by text, at timestamptz NOT NULL DEFAULT now());
   CREATE TABLE sync_reports (
     id bigserial PRIMARY KEY, school text NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
     kind text NOT NULL, lesson_id text, payload jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now());
   CREATE INDEX sync_reports_school ON sync_reports (school, id);
   CREATE TABLE telemetry (
     id bigserial PRIMARY KEY, school text NOT NULL REFERENCES schools(id) ON DELETE CASCADE,
     payload jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now());
   CREATE INDEX telemetry_school ON telemetry (school, id);
   -- the broker's auth files are rendered from the catalog: version asks, applied answers
   CREATE TABLE broker_auth (id integer PRIMARY KEY CHECK (id = 1), version bigint NOT NULL, applied bigint NOT NULL);
   INSERT INTO broker_auth VALUES (1, 1, 0);`,
];

const LOCK = 0x79616368; // 'yach'

export async function migrate(pool: pg.Pool, log: Logger): Promise<number> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK]);
    await c.query('CREATE TABLE IF NOT EXISTS hub_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const r = await c.query<{ v: number | null }>('SELECT max(version) AS v FROM hub_migrations');
    const have = r.rows[0]?.v ?? 0;
    for (let v = have + 1; v <= MIGRATIONS.length; v++) {
      await c.query(MIGRATIONS[v - 1]!);
      await c.query('INSERT INTO hub_migrations (version) VALUES ($1)', [v]);
      log.info({ version: v }, 'hub catalog migrated');
    }
    await c.query('COMMIT');
    return MIGRATIONS.length;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw new YachayError('YCH_ERR_HUB_DATABASE', `hub catalog migration failed: ${(err as Error).message}`, { cause: err });
  } finally {
    c.release();
  }
}

export function openPool(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 8, connectionTimeoutMillis: 10_000 });
  // an idle client that loses its server must not crash the hub: the next query reports it
  pool.on('error', () => undefined);
  return pool;
}

export async function connectPool(url: string): Promise<pg.Pool> {
  const pool = openPool(url);
  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new YachayError('YCH_ERR_HUB_DATABASE', `cannot reach the hub database ${redact(url)}: ${(err as Error).message}`, { cause: err });
  }
  return pool;
}

/** a URL as it may be logged: no password */
export function redact(url: string): string {
  try { const u = new URL(url); if (u.password) u.password = '***'; return u.toString(); } catch { return 'the database URL'; }
}

export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}
