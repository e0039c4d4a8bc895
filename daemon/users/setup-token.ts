import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { writeFileAtomic } from '../util/atomic.js';
import type { Users } from './users.js';

/**
 * The one-time setup token: how the first admin account is made on a box whose technician has
 * no terminal at hand. While the box has no admin, each start draws a new random token, prints
 * it (console and journal) and writes it to `<data-dir>/setup-token` (mode 0600, for whoever
 * can read the SD card or ssh in). Whoever shows it to `POST /api/setup` creates the admin; the
 * token is then void, as it is as soon as an admin exists by any other way (`yachay users add`).
 * Only its SHA-256 is kept in memory, and it is compared in constant time.
 */
export class SetupToken {
  private digest: Buffer | undefined;

  private constructor(
    private readonly users: Users,
    private readonly file: string,
    /** the token in clear, for the start banner; undefined when no setup is needed */
    readonly token: string | undefined,
  ) {
    if (token) this.digest = sha256(token);
  }

  /** A fresh token when the box has no admin yet, else a consumed one (and no file). */
  static async forBox(users: Users, file: string): Promise<SetupToken> {
    if (users.count('admin') > 0) {
      await rm(file, { force: true });
      return new SetupToken(users, file, undefined);
    }
    const token = randomBytes(18).toString('base64url');
    await writeFileAtomic(file, `${token}\n`, { mode: 0o600 });
    return new SetupToken(users, file, token);
  }

  /** True while the token can still create the first admin. */
  get needed(): boolean {
    if (!this.digest) return false;
    if (this.users.count('admin') > 0) {
      // an admin was added from the command line meanwhile
      this.digest = undefined;
      try { rmSync(this.file, { force: true }); } catch { /* read-only disk: the token is void in memory anyway */ }
      return false;
    }
    return true;
  }

  matches(candidate: string): boolean {
    if (!this.needed || !this.digest) return false;
    return timingSafeEqual(sha256(candidate), this.digest);
  }

  /**
   * Takes the token for one request, synchronously: two requests showing it at the same moment
   * cannot both pass (it made two admins while the first one's password was being hashed).
   * Returns the function that gives it back if that request fails to create the admin.
   */
  claim(candidate: string): (() => void) | undefined {
    if (!this.matches(candidate)) return undefined;
    const digest = this.digest;
    this.digest = undefined;
    return () => { if (this.users.count('admin') === 0) this.digest = digest; };
  }

  /** Voids the token; called once the admin it created is saved. */
  async consume(): Promise<void> {
    this.digest = undefined;
    await rm(this.file, { force: true });
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
