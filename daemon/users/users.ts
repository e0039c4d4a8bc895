import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { Db } from '../db/db.js';
import { YachayError } from '../errors.js';
import { scryptGate } from './hash-gate.js';

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number, opts: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

export type Role = 'admin' | 'teacher' | 'device';
export interface User { username: string; role: Role; createdAt: number }

/** scrypt N=2^15 (about 60 ms and 32 MB on a Pi 4): slow for a guesser, fine for a login. */
const PARAMS = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEYLEN = 32;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptGate.run(() => scrypt(password.normalize('NFKC'), salt, KEYLEN, PARAMS));
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, key] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !key) return false;
  const want = Buffer.from(key, 'base64');
  const got = await scryptGate.run(() => scrypt(password.normalize('NFKC'), Buffer.from(salt, 'base64'), want.length,
    { N: Number(n), r: Number(r), p: Number(p), maxmem: PARAMS.maxmem }));
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Same cost whether or not the user exists, so timing does not reveal usernames. */
const DUMMY = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

export const USERNAME = /^[a-z0-9][a-z0-9._-]{1,31}$/;
export const MIN_PASSWORD = 10;

export class Users {
  constructor(private readonly db: Db) {}

  async add(username: string, password: string, role: Role): Promise<User> {
    if (!USERNAME.test(username)) {
      throw new YachayError('YCH_ERR_USAGE', `username "${username}" must be 2-32 lower-case letters, digits, . _ or -`);
    }
    if (password.length < MIN_PASSWORD) {
      throw new YachayError('YCH_ERR_USAGE', `password for ${username} is too short: use at least ${MIN_PASSWORD} characters`);
    }
    const hash = await hashPassword(password);
    const now = Date.now();
    const res = this.db.prepare(
      `INSERT INTO users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (username) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash`,
    ).run(username, role, hash, now);
    if (res.changes !== 1) throw new YachayError('YCH_ERR_IO', `could not save user ${username}`);
    return { username, role, createdAt: now };
  }

  /** The user when the password matches, otherwise undefined. */
  async verify(username: string, password: string): Promise<User | undefined> {
    const row = this.db.prepare('SELECT username, role, password_hash, created_at FROM users WHERE username = ?')
      .get(username) as { username: string; role: Role; password_hash: string; created_at: number } | undefined;
    const ok = await verifyPassword(password, row?.password_hash ?? DUMMY);
    return row && ok ? { username: row.username, role: row.role, createdAt: row.created_at } : undefined;
  }

  get(username: string): User | undefined {
    const row = this.db.prepare('SELECT username, role, created_at FROM users WHERE username = ?')
      .get(username) as { username: string; role: Role; created_at: number } | undefined;
    return row && { username: row.username, role: row.role, createdAt: row.created_at };
  }

  list(): User[] {
    return (this.db.prepare('SELECT username, role, created_at FROM users ORDER BY username').all() as Array<{ username: string; role: Role; created_at: number }>)
      .map((r) => ({ username: r.username, role: r.role, createdAt: r.created_at }));
  }

  remove(username: string): boolean {
    return this.db.prepare('DELETE FROM users WHERE username = ?').run(username).changes === 1;
  }

  count(role?: Role): number {
    const row = (role
      ? this.db.prepare('SELECT count(*) AS n FROM users WHERE role = ?').get(role)
      : this.db.prepare('SELECT count(*) AS n FROM users').get()) as { n: number };
    return row.n;
  }
}
