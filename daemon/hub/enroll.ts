import { createHash, randomInt } from 'node:crypto';
import type pg from 'pg';
import { YachayError } from '../errors.js';
import { CHANNEL } from '../pkg/manifest.js';
import { inTransaction } from './db.js';
import { boxUser, hashPassword } from './broker-auth.js';
import { randomSecret } from './secrets.js';

/**
 * Schools and their one-time enrollment codes. A code is 12 characters from 32 (60 bits), typed
 * by a technician; only its sha256 is stored; it works once, for 7 days.
 */
export const SCHOOL = CHANNEL;
export const DEFAULT_CHANNEL = 'general';
export const CODE_DAYS = 7;
// Crockford's base32: no I, L, O, U, so a code read aloud or copied by hand survives
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function newCode(): string {
  let s = '';
  for (let i = 0; i < 12; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return `${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8)}`;
}

/** what a person may type for a code: lower case, spaces, O for 0, I or L for 1 */
export function normalizeCode(raw: string): string {
  return raw.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
}

export function codeHash(raw: string): string {
  return createHash('sha256').update(normalizeCode(raw)).digest('hex');
}

export function parseChannels(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const list = [...new Set(raw.split(',').map((c) => c.trim()).filter(Boolean))];
  const bad = list.filter((c) => !CHANNEL.test(c));
  if (bad.length || !list.length) throw new YachayError('YCH_ERR_USAGE', `--channels: ${bad.length ? `not a channel name: ${bad.join(', ')}` : 'empty'} (lower-case letters, digits, dashes)`);
  return list;
}

export function checkSchool(id: string | undefined): string {
  if (!id || !SCHOOL.test(id)) throw new YachayError('YCH_ERR_USAGE', `school id ${JSON.stringify(id ?? '')} must be lower-case letters, digits and dashes (e.g. ie-54321-puno)`);
  return id;
}

/** Asks every hub to render the broker's auth files again (their LISTEN); returns the version to wait for. */
export async function bumpAuth(c: pg.PoolClient | pg.Pool): Promise<number> {
  const r = await c.query<{ version: string }>('UPDATE broker_auth SET version = version + 1 WHERE id = 1 RETURNING version');
  await c.query("SELECT pg_notify('yachay_hub_auth', $1)", [r.rows[0]!.version]);
  return Number(r.rows[0]!.version);
}

/** Creates or updates the school (a revoked school is enrolled again) and issues a fresh code. */
export async function enrollSchool(pool: pg.Pool, school: string, name: string | undefined, channels: string[] | undefined, now = new Date()): Promise<{ code: string; expiresAt: Date; created: boolean }> {
  checkSchool(school);
  return inTransaction(pool, async (c) => {
    const old = await c.query<{ name: string }>('SELECT name FROM schools WHERE id = $1 FOR UPDATE', [school]);
    await c.query(
      `INSERT INTO schools (id, name, channels) VALUES ($1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET name = COALESCE($4, schools.name), channels = COALESCE($5, schools.channels), revoked_at = NULL`,
      // a new school without --name is shown by its id until a later `hub enroll --name` names it
      [school, name ?? old.rows[0]?.name ?? school, channels ?? [DEFAULT_CHANNEL], name ?? null, channels ?? null]);
    const code = newCode();
    const expiresAt = new Date(now.getTime() + CODE_DAYS * 86400_000);
    await c.query('INSERT INTO enroll_codes (code_sha256, school, expires_at) VALUES ($1, $2, $3)', [codeHash(code), school, expiresAt]);
    // channels may have changed: the ACL follows
    await bumpAuth(c);
    return { code, expiresAt, created: !old.rowCount };
  });
}

export interface EnrollGrant { school: string; name: string; channels: string[]; username: string; password: string }

export class EnrollRefused extends YachayError {
  constructor(code: 'YCH_ERR_ENROLL_CODE' | 'YCH_ERR_ENROLL_EXPIRED' | 'YCH_ERR_ENROLL_USED' | 'YCH_ERR_REVOKED', message: string, status?: number) {
    super(code, message, { status });
  }
}

/** The one exchange of a code for the box's MQTT credentials, under a row lock: two boxes racing with one code get one grant. */
export async function exchangeCode(pool: pg.Pool, raw: string, who: { hostname?: string | undefined; version?: string | undefined }, now = new Date()): Promise<EnrollGrant> {
  const hash = codeHash(String(raw ?? ''));
  return inTransaction(pool, async (c) => {
    const r = await c.query<{ school: string; expires_at: Date; used_at: Date | null; name: string; channels: string[]; revoked_at: Date | null }>(
      `SELECT e.school, e.expires_at, e.used_at, s.name, s.channels, s.revoked_at
         FROM enroll_codes e JOIN schools s ON s.id = e.school WHERE e.code_sha256 = $1 FOR UPDATE OF e`, [hash]);
    const row = r.rows[0];
    if (!row) throw new EnrollRefused('YCH_ERR_ENROLL_CODE', 'código de inscripción incorrecto / wrong enrollment code', 401);
    if (row.revoked_at) throw new EnrollRefused('YCH_ERR_REVOKED', `la escuela ${row.school} fue dada de baja / school ${row.school} was revoked`, 403);
    if (row.used_at) throw new EnrollRefused('YCH_ERR_ENROLL_USED', 'este código ya fue usado / this code was already used', 410);
    if (row.expires_at.getTime() <= now.getTime()) throw new EnrollRefused('YCH_ERR_ENROLL_EXPIRED', 'este código venció / this code expired', 410);
    const password = randomSecret();
    const username = boxUser(row.school);
    await c.query('UPDATE enroll_codes SET used_at = $2, used_by = $3 WHERE code_sha256 = $1', [hash, now, who.hostname ?? null]);
    await c.query(
      `INSERT INTO boxes (school, username, password_hash, hostname, version, enrolled_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (school) DO UPDATE SET password_hash = $3, hostname = $4, version = COALESCE($5, boxes.version), enrolled_at = $6`,
      [row.school, username, hashPassword(password), who.hostname ?? null, who.version ?? null, now]);
    await bumpAuth(c);
    return { school: row.school, name: row.name, channels: row.channels, username, password };
  });
}

/** Cuts the school's box off: no broker account, no ACL entry, outstanding codes refused. */
export async function revokeSchool(pool: pg.Pool, school: string, now = new Date()): Promise<number> {
  checkSchool(school);
  return inTransaction(pool, async (c) => {
    const r = await c.query('UPDATE schools SET revoked_at = $2 WHERE id = $1', [school, now]);
    if (!r.rowCount) throw new YachayError('YCH_ERR_USAGE', `no school ${school} in the hub's catalog`);
    await c.query('UPDATE boxes SET password_hash = NULL, online = false WHERE school = $1', [school]);
    return bumpAuth(c);
  });
}

/** Box accounts the broker should know: enrolled, not revoked. */
export async function boxCredentials(pool: pg.Pool): Promise<{ school: string; username: string; passwordHash: string; channels: string[] }[]> {
  const r = await pool.query<{ school: string; username: string; password_hash: string; channels: string[] }>(
    `SELECT b.school, b.username, b.password_hash, s.channels FROM boxes b JOIN schools s ON s.id = b.school
      WHERE s.revoked_at IS NULL AND b.password_hash IS NOT NULL ORDER BY b.school`);
  return r.rows.map((x) => ({ school: x.school, username: x.username, passwordHash: x.password_hash, channels: x.channels }));
}

/** Per-address attempt window: 60 bits cannot be guessed at 10 tries a minute. */
export class AttemptLimiter {
  private readonly hits = new Map<string, number[]>();
  constructor(private readonly max = 10, private readonly windowMs = 60_000) {}

  allow(key: string, now = Date.now()): boolean {
    const list = (this.hits.get(key) ?? []).filter((t) => now - t < this.windowMs);
    if (list.length >= this.max) { this.hits.set(key, list); return false; }
    list.push(now);
    this.hits.set(key, list);
    if (this.hits.size > 10_000) for (const [k, v] of this.hits) if (!v.some((t) => now - t < this.windowMs)) this.hits.delete(k);
    return true;
  }
}
