import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Role, User } from '../../users/users.js';
import { YachayError } from '../../errors.js';

export const SESSION_COOKIE = 'yachay_session';

export interface Session { user: User; expires: number }

/**
 * Login sessions: 32 random bytes (base64url) as the token, kept only in memory with an expiry,
 * so a restart logs everyone out (teachers log in again; nothing else is lost). The token is
 * accepted as `Authorization: Bearer <token>` or the HttpOnly cookie.
 */
export class Sessions {
  private readonly byToken = new Map<string, Session>();
  /**
   * `current` reads the user as the database has it now: a session outlives neither its user's
   * removal nor a demotion, even when `yachay users` changed them from another process.
   */
  constructor(private readonly ttlMs: number, private readonly now: () => number,
    private readonly current?: (username: string) => User | undefined) {}

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
    if (this.current) {
      const now = this.current(s.user.username);
      if (!now) { this.byToken.delete(token); return undefined; }
      if (now.role !== s.user.role) s.user = now;
    }
    return s;
  }

  /** Ends every session of a user (removed, demoted, password changed). */
  endFor(username: string): number {
    let n = 0;
    for (const [k, s] of this.byToken) if (s.user.username === username) { this.byToken.delete(k); n++; }
    return n;
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
    return Sessions.cookieOf(req);
  }

  /** The cookie's token alone. */
  static cookieOf(req: FastifyRequest): string | undefined {
    const cookie = req.headers.cookie;
    if (!cookie) return undefined;
    for (const part of cookie.split(';')) {
      const i = part.indexOf('=');
      if (i > 0 && part.slice(0, i).trim() === SESSION_COOKIE) return part.slice(i + 1).trim();
    }
    return undefined;
  }

  /**
   * The session a request carries: its Bearer token, else its cookie. A stale or empty Bearer
   * header (a page from before the login answer lost its token sends "Bearer undefined") does
   * not hide a valid cookie.
   */
  of(req: FastifyRequest): Session | undefined {
    const auth = req.headers.authorization;
    const bearer = auth?.startsWith('Bearer ') ? this.get(auth.slice(7).trim()) : undefined;
    return bearer ?? this.get(Sessions.cookieOf(req));
  }

  /** The logged-in user, or a 401/403 YachayError. */
  require(req: FastifyRequest, roles?: readonly Role[]): User {
    const s = this.of(req);
    if (!s) throw new YachayError('YCH_HTTP_LOGIN_REQUIRED', 'log in first', { headers: { 'www-authenticate': 'Bearer' } });
    if (roles && !roles.includes(s.user.role)) {
      throw new YachayError('YCH_HTTP_FORBIDDEN', `${s.user.role} accounts may not do this`);
    }
    return s.user;
  }
}

export { LoginLimiter } from '../../users/login-limiter.js';
