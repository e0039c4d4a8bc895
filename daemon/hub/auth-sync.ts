import pg from 'pg';
import type { Logger } from '../log.js';
import { YachayError } from '../errors.js';
import { hashPassword, renderAcl, renderPasswd, writeAuthFiles } from './broker-auth.js';
import type { AuthFiles } from './broker-auth.js';
import { boxCredentials } from './enroll.js';
import { sleep } from './ports.js';

/**
 * Keeps the broker's password and ACL files equal to the catalog. A change anywhere (this
 * hub's /api/enroll, a `hub revoke` run in another shell) bumps broker_auth.version and
 * NOTIFYs; the hub that runs the broker renders, reloads, and writes `applied`, which the
 * CLI waits for so "revoked" means the box is already off.
 */
export class AuthSync {
  private listener: pg.Client | undefined;
  private running: Promise<void> = Promise.resolve();
  private again = false;
  private busy = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly url: string,
    private readonly files: AuthFiles,
    private readonly hubPassword: string,
    private readonly reload: () => Promise<void>,
    private readonly log: Logger,
    private readonly owner?: { uid: number; gid: number },
  ) {}

  /** renders once (before the broker starts), without reloading */
  async render(): Promise<number> {
    const v = await this.pool.query<{ version: string }>('SELECT version FROM broker_auth WHERE id = 1');
    const boxes = await boxCredentials(this.pool);
    await writeAuthFiles(this.files, renderPasswd(hashPassword(this.hubPassword), boxes), renderAcl(boxes), this.owner);
    return Number(v.rows[0]!.version);
  }

  async listen(): Promise<void> {
    this.listener = new pg.Client({ connectionString: this.url });
    this.listener.on('error', (err) => this.log.error({ err }, 'the catalog listener lost its connection; broker accounts follow at the next enrollment or restart'));
    await this.listener.connect();
    this.listener.on('notification', () => { void this.apply(); });
    await this.listener.query('LISTEN yachay_hub_auth');
  }

  /** coalesces bursts: one render runs at a time, and one more after it if asked meanwhile */
  apply(): Promise<void> {
    if (this.busy) { this.again = true; return this.running; }
    this.busy = true;
    this.running = (async () => {
      try {
        do {
          this.again = false;
          const version = await this.render();
          await this.reload();
          await this.pool.query('UPDATE broker_auth SET applied = GREATEST(applied, $1) WHERE id = 1', [version]);
          this.log.info({ version }, 'broker accounts and ACL applied');
        } while (this.again);
      } catch (err) {
        this.log.error({ err }, 'broker accounts not applied');
      } finally {
        this.busy = false;
      }
    })();
    return this.running;
  }

  async stop(): Promise<void> {
    await this.running.catch(() => undefined);
    await this.listener?.end().catch(() => undefined);
    this.listener = undefined;
  }
}

/** Waits until a running hub applied `version` to its broker; false when none did within `ms`. */
export async function waitApplied(pool: pg.Pool, version: number, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const r = await pool.query<{ applied: string }>('SELECT applied FROM broker_auth WHERE id = 1');
    if (Number(r.rows[0]?.applied ?? 0) >= version) return true;
    await sleep(100);
  }
  return false;
}

export function notRunning(dataDir: string): YachayError {
  return new YachayError('YCH_ERR_HUB_NOT_RUNNING', `no hub answered for ${dataDir}: the change is saved and applies when the hub starts`);
}
