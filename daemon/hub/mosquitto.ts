import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { YachayError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { Child, isRoot } from '../media/child.js';
import { canConnect, sleep } from './ports.js';
import { authFiles } from './broker-auth.js';
import type { AuthFiles } from './broker-auth.js';
import { chownTree, systemUser } from './postgres.js';

/**
 * The embedded broker: a Mosquitto child with its config generated under DIR/mosquitto.
 * Persistence on and a deep per-client queue, because a box may be offline for weeks and
 * Mosquitto's defaults (1,000 queued messages) would drop what it missed (issue 9, Why).
 */
export interface MosquittoOptions { port: number; bind: string }

const BIN = process.env.YACHAY_MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

export function mosquittoConfig(dir: string, o: MosquittoOptions, files: AuthFiles, runAs: string | undefined): string {
  return [
    '# written by `yachay hub start` at each start: edits are overwritten',
    ...(runAs ? [`user ${runAs}`] : []),
    'per_listener_settings false',
    'allow_anonymous false',
    `password_file ${files.passwd}`,
    `acl_file ${files.acl}`,
    'persistence true',
    `persistence_location ${join(dir, 'data')}/`,
    'autosave_interval 30',
    // a box that has not come back in 90 days is gone; its session is dropped
    'persistent_client_expiration 90d',
    'max_queued_messages 1000000',
    'max_queued_bytes 0',
    'max_inflight_messages 20',
    'max_packet_size 1048576',
    `log_dest file ${join(dir, 'mosquitto.log')}`,
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
    'log_timestamp_format %Y-%m-%dT%H:%M:%S',
    `listener ${o.port} ${o.bind}`,
    '',
  ].join('\n');
}

export class EmbeddedMosquitto {
  private child: Child | undefined;
  readonly dir: string;
  readonly logFile: string;
  readonly files: AuthFiles;
  readonly owner: { uid: number; gid: number } | undefined;
  private readonly runAs: string | undefined;

  constructor(dataDir: string, private readonly opts: MosquittoOptions, private readonly log: Logger) {
    this.dir = join(dataDir, 'mosquitto');
    this.logFile = join(this.dir, 'mosquitto.log');
    this.files = authFiles(this.dir);
    this.runAs = isRoot() ? 'mosquitto' : undefined;
    this.owner = this.runAs ? systemUser(this.runAs) : undefined;
  }

  get url(): string {
    const host = this.opts.bind === '0.0.0.0' || this.opts.bind === '::' ? '127.0.0.1' : this.opts.bind;
    return `mqtt://${host}:${this.opts.port}`;
  }

  get crashed(): Promise<string> {
    return this.child!.exited.then((e) => `Mosquitto stopped (${e.signal ?? `exit ${e.code}`}); log: ${this.logFile}`);
  }

  get stopRequested(): boolean { return this.child?.stopRequested ?? false; }

  /** the auth files must exist (the hub writes them from the catalog) before the broker starts */
  async prepare(): Promise<void> {
    await mkdir(join(this.dir, 'data'), { recursive: true, mode: 0o700 });
  }

  async start(): Promise<void> {
    if (!existsSync(this.files.passwd)) throw new Error('the password file must be written before Mosquitto starts');
    const conf = join(this.dir, 'mosquitto.conf');
    await writeFileAtomic(conf, mosquittoConfig(this.dir, this.opts, this.files, this.runAs), { mode: 0o644 });
    // appended across starts: the log of a crash is still there after the next start
    await appendFile(this.logFile, '', { mode: 0o640 });
    if (this.owner) await chownTree(this.dir, this.owner.uid, this.owner.gid);
    this.child = Child.spawn('mosquitto', BIN, ['-c', conf], { logFile: join(this.dir, 'mosquitto.stderr.log') });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (!this.child.running) throw new YachayError('YCH_ERR_HUB_BROKER', `Mosquitto did not start: ${await this.tail()} (log: ${this.logFile})`);
      if (await canConnect(this.opts.port, this.opts.bind === '0.0.0.0' ? '127.0.0.1' : this.opts.bind)) {
        this.log.info({ port: this.opts.port }, 'Mosquitto ready');
        return;
      }
      await sleep(100);
    }
    throw new YachayError('YCH_ERR_HUB_BROKER', `Mosquitto did not listen on ${this.opts.port} within 20 s (log: ${this.logFile})`);
  }

  private async tail(): Promise<string> {
    const a = await readFile(this.logFile, 'utf8').catch(() => '');
    const b = await readFile(join(this.dir, 'mosquitto.stderr.log'), 'utf8').catch(() => '');
    return (a + b).trim().split('\n').slice(-3).join(' | ') || 'no output';
  }

  /**
   * SIGHUP: Mosquitto re-reads the password and ACL files and disconnects a client whose
   * credentials are gone. Resolves when the log shows the reload, so an answer given after it
   * (a fresh box password) is already valid.
   */
  async reload(): Promise<void> {
    if (!this.child?.running) return;
    const before = (await stat(this.logFile).catch(() => ({ size: 0 }))).size;
    this.child.signal('SIGHUP');
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      await sleep(25);
      const text = await readFile(this.logFile).then((b) => b.subarray(before).toString('utf8'), () => '');
      if (/Reloading config/i.test(text)) { await sleep(50); return; }
    }
    this.log.warn({ log: this.logFile }, 'Mosquitto did not log its reload within 5 s');
  }

  async stop(): Promise<void> {
    if (!this.child) return;
    await this.child.stop('SIGTERM', { graceMs: 10_000 });
    this.log.info('Mosquitto stopped');
  }
}
