import { appendFile, chown, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from '../log.js';
import { YachayError } from '../errors.js';
import { Child, isRoot, runToEnd } from '../media/child.js';
import { exitStatus } from '../media/run.js';
import { freePort, sleep } from './ports.js';

/**
 * The embedded default: a private PostgreSQL cluster under DIR/pg, Debian's binaries, reachable
 * on a unix socket in DIR/pg/run and on 127.0.0.1 with a password (scram) on a free port.
 * initdb and postgres refuse root, so as root the folder belongs to `postgres` and both run
 * through runuser.
 */
const USER = 'yachay';
const DB = 'yachay';

function pgBin(name: string): string {
  const base = process.env.YACHAY_PG_BIN ?? (() => {
    const root = '/usr/lib/postgresql';
    let versions: string[] = [];
    try { versions = readdirSync(root).filter((v) => /^\d+$/.test(v)); } catch { /* none */ }
    const v = versions.sort((a, b) => Number(b) - Number(a))[0];
    return v ? join(root, v, 'bin') : '';
  })();
  const p = join(base, name);
  if (!base || !existsSync(p)) {
    throw new YachayError('YCH_ERR_HUB_DATABASE', `PostgreSQL's ${name} not found (looked in /usr/lib/postgresql/*/bin; set YACHAY_PG_BIN): install it with \`apt-get install -y postgresql\``);
  }
  return p;
}

export async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  for (const e of await readdir(path, { withFileTypes: true }).catch(() => [])) {
    const p = join(path, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid); else await chown(p, uid, gid);
  }
}

/** uid and gid of a system user, from /etc/passwd (Debian's packages create `postgres` and `mosquitto`) */
export function systemUser(name: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === name);
  if (!line) throw new YachayError('YCH_ERR_HUB_DATABASE', `system user ${name} does not exist: install its Debian package`);
  return { uid: Number(line[2]), gid: Number(line[3]) };
}

export class EmbeddedPostgres {
  private child: Child | undefined;
  port = 0;
  readonly root: string;
  readonly data: string;
  readonly logFile: string;
  private readonly runUser: string | undefined;

  constructor(dataDir: string, private readonly password: string, private readonly log: Logger) {
    this.root = join(dataDir, 'pg');
    this.data = join(this.root, 'data');
    this.logFile = join(this.root, 'postgres.log');
    this.runUser = isRoot() ? 'postgres' : undefined;
  }

  get url(): string {
    return `postgres://${USER}:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}/${DB}`;
  }

  get crashed(): Promise<string> {
    return this.child!.exited.then((e) => `PostgreSQL stopped (${e.signal ?? `exit ${e.code}`}); log: ${this.logFile}`);
  }

  get stopRequested(): boolean { return this.child?.stopRequested ?? false; }

  /**
   * A unix socket path is limited to 107 bytes: a deep data dir gets its socket folder in
   * /tmp instead (named by a hash of the data dir, so one hub finds its own again).
   */
  get socketDir(): string {
    const inside = join(this.root, 'run');
    if (inside.length + '/.s.PGSQL.65535.lock'.length <= 100) return inside;
    return join(tmpdir(), `yachay-pg-${createHash('sha256').update(this.root).digest('hex').slice(0, 12)}`);
  }

  async start(): Promise<string> {
    await mkdir(join(this.root, 'run'), { recursive: true, mode: 0o700 });
    await mkdir(this.socketDir, { recursive: true, mode: 0o700 });
    const owner = this.runUser ? systemUser(this.runUser) : undefined;
    if (this.runUser) this.checkReachable(this.runUser);
    if (!existsSync(join(this.data, 'PG_VERSION'))) await this.init(owner);
    if (owner) {
      // the data tree is PostgreSQL's since initdb: only what we create around it
      for (const p of [this.root, join(this.root, 'run'), this.socketDir]) await chown(p, owner.uid, owner.gid);
      await appendFile(this.logFile, '', { mode: 0o640 });
      await chown(this.logFile, owner.uid, owner.gid);
    }
    this.port = await freePort();
    this.child = Child.spawn('postgres', pgBin('postgres'), [
      '-D', this.data, '-p', String(this.port), '-k', this.socketDir, '-c', 'listen_addresses=127.0.0.1',
    ], { logFile: this.logFile, asUser: this.runUser });
    await this.waitReady();
    this.log.info({ port: this.port, data: this.data }, 'private PostgreSQL ready');
    return this.url;
  }

  /**
   * As root, PostgreSQL runs as `postgres`, which must be able to walk down to the data dir: a
   * parent folder closed to other users (mktemp's 0700, a private home) would make initdb fail
   * with a bare "Permission denied". Say which folder and what to do instead.
   */
  private checkReachable(user: string): void {
    // the pg folder itself becomes postgres's own; the way down to it must be open
    const hubDir = dirname(this.root);
    if (exitStatus('runuser', ['-u', user, '--', 'test', '-x', hubDir]) === 0) return;
    let closed = hubDir;
    for (let d = hubDir; d !== dirname(d); d = dirname(d)) {
      if (exitStatus('runuser', ['-u', user, '--', 'test', '-x', d]) !== 0) closed = d;
    }
    throw new YachayError('YCH_ERR_HUB_DATABASE', `the ${user} user cannot reach ${this.root}: ${closed} is closed to other users. ` +
      `Give its parents o+x (chmod o+x ${closed}) or use a data dir such as /var/lib/yachay-hub`);
  }

  private async init(owner: { uid: number; gid: number } | undefined): Promise<void> {
    await rm(this.data, { recursive: true, force: true });
    const pwfile = join(this.root, 'initdb.pw');
    await writeFile(pwfile, this.password + '\n', { mode: 0o600 });
    if (owner) await chownTree(this.root, owner.uid, owner.gid);
    try {
      await runToEnd(pgBin('initdb'), ['-D', this.data, '-U', USER, '--pwfile', pwfile, '-E', 'UTF8', '--locale', 'C',
        '--auth-local', 'trust', '--auth-host', 'scram-sha-256'], { logFile: join(this.root, 'initdb.log'), asUser: this.runUser });
    } catch (err) {
      throw new YachayError('YCH_ERR_HUB_DATABASE', `initdb under ${this.data} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      await rm(pwfile, { force: true });
    }
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 60_000;
    let last: unknown;
    while (Date.now() < deadline) {
      if (!this.child!.running) {
        throw new YachayError('YCH_ERR_HUB_DATABASE', `PostgreSQL did not start; log: ${this.logFile}`);
      }
      const c = new pg.Client({ connectionString: this.url.replace(/\/yachay$/, '/postgres'), connectionTimeoutMillis: 2000 });
      try {
        await c.connect();
        const r = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB]);
        if (r.rowCount === 0) await c.query(`CREATE DATABASE ${DB} OWNER ${USER}`);
        return;
      } catch (err) {
        last = err;
      } finally {
        await c.end().catch(() => undefined);
      }
      await sleep(150);
    }
    throw new YachayError('YCH_ERR_HUB_DATABASE', `PostgreSQL did not answer within 60 s (${(last as Error)?.message}); log: ${this.logFile}`);
  }

  /** fast shutdown: PostgreSQL's own SIGINT to the postmaster (its pid file), not to the wrapper */
  async stop(): Promise<void> {
    if (!this.child) return;
    let pid: number | undefined;
    try { pid = Number((await readFile(join(this.data, 'postmaster.pid'), 'utf8')).split('\n')[0]); } catch { /* not up */ }
    await this.child.stop('SIGINT', { pid: pid && pid > 0 ? pid : undefined, graceMs: 20_000 });
    if (this.socketDir !== join(this.root, 'run')) await rm(this.socketDir, { recursive: true, force: true });
    this.log.info('private PostgreSQL stopped');
  }
}
