import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Role, User } from '../../users/users.js';

/**
 * An error with an HTTP status and a stable code (YCH_HTTP_*); the server's error handler turns
 * it into `{ error: code, message }`. Anything else is a 500 whose message is not shown.
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const SESSION_COOKIE = 'yachay_session';

export interface Session { user: User; expires: number }

/**
 * Login sessions: 32 random bytes (base64url) as the token, kept only in memory with an expiry,
 * so a restart logs everyone out (teachers log in again; nothing else is lost). The token is
 * accepted as `Authorization: Bearer <token>` or the HttpOnly cookie.
 */
export class Sessions {
  private readonly byToken = new Map<string, Session>();
  constructor(private readonly ttlMs: number, private readonly now: () => number) {}

  create(user: User): { token: string; expires: number } {
    const token = randomBytes(32).toString('base64url');
    const expires = this.now() + this.ttlMs;
    this.byToken.set(token, { user, expires });
    return { token, expires };
  }

  get(token: string | undefined): Session | undefined {
    if (!token) return undefined;
    const s = this.byToken.get(token);
    if (!s) return undefined;
    if (s.expires <= this.now()) {
      this.byToken.delete(token);
      return undefined;
    }
    return s;
  }

  delete(token: string | undefined): boolean {
    return token ? this.byToken.delete(token) : false;
  }

  prune(): void {
    const now = this.now();
    for (const [k, s] of this.byToken) if (s.expires <= now) this.byToken.delete(k);
  }

  get size(): number {
    return this.byToken.size;
  }

  /** The token a request carries (header first, then cookie). */
  static tokenOf(req: FastifyRequest): string | undefined {
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
    const cookie = req.headers.cookie;
    if (!cookie) return undefined;
    for (const part of cookie.split(';')) {
      const i = part.indexOf('=');
      if (i > 0 && part.slice(0, i).trim() === SESSION_COOKIE) return part.slice(i + 1).trim();
    }
    return undefined;
  }

  /** The logged-in user, or a 401/403 HttpError. */
  require(req: FastifyRequest, roles?: readonly Role[]): User {
    const s = this.get(Sessions.tokenOf(req));
    if (!s) throw new HttpError(401, 'YCH_HTTP_LOGIN_REQUIRED', 'log in first', { 'www-authenticate': 'Bearer' });
    if (roles && !roles.includes(s.user.role)) {
      throw new HttpError(403, 'YCH_HTTP_FORBIDDEN', `${s.user.role} accounts may not do this`);
    }
    return s.user;
  }
}

/**
 * Failed logins per client address in a sliding one-minute window. When `limit` failures are in
 * the window, every further attempt (even a right password) is refused with 429 until the oldest
 * one leaves it; that is checked before scrypt runs, so guessing also costs the box no CPU.
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();
  constructor(private readonly limit: number, private readonly windowMs: number, private readonly now: () => number) {}

  /** Seconds to wait, or 0 when an attempt is allowed. */
  retryAfter(ip: string): number {
    const list = this.recent(ip);
    if (list.length < this.limit) return 0;
    return Math.max(1, Math.ceil((list[0]! + this.windowMs - this.now()) / 1000));
  }

  fail(ip: string): void {
    const list = this.recent(ip);
    list.push(this.now());
    this.failures.set(ip, list);
  }

  prune(): void {
    for (const ip of [...this.failures.keys()]) if (this.recent(ip).length === 0) this.failures.delete(ip);
  }

  private recent(ip: string): number[] {
    const cutoff = this.now() - this.windowMs;
    const list = (this.failures.get(ip) ?? []).filter((t) => t > cutoff);
    if (list.length) this.failures.set(ip, list); else this.failures.delete(ip);
    return list;
  }
}
