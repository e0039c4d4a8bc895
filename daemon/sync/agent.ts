import { hostname } from 'node:os';
import { mkdir, readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Lessons } from '../catalog/lessons.js';
import type { Db } from '../db/db.js';
import type { Logger } from '../log.js';
import type { DataPaths } from '../paths.js';
import type { Service } from '../service.js';
import { YachayError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { BridgeService } from './bridge.js';
import { enroll, isRefusal, loadCredentials } from './credentials.js';
import type { Credentials } from './credentials.js';
import { SyncService } from './engine.js';
import type { SyncSettings } from './engine.js';
import { CatalogMirror } from './mirror.js';
import { Outbox } from './outbox.js';
import { Telemetry } from './telemetry.js';
import { localClock, parseWindow } from './window.js';
import { RUNNING_VERSION } from '../update/version.js';

/**
 * The box's whole sync side as one service: enrollment (once), then the bridge to the hub's
 * broker, the sync engine and telemetry. A box that is not enrolled, or whose hub did not answer
 * its first enrollment, still starts and serves its lessons; enrollment is retried until it
 * works. Only a refused code stops `start` (prepare() throws it before any service starts).
 */
/** the version a box reports to the hub (status, telemetry, enrollment): a bundle's VERSION, else package.json's */
export const VERSION: string = RUNNING_VERSION;

export interface SyncConfigSlice extends SyncSettings {
  hub: string;
  outboxMaxRows: number;
  outboxMaxBytes: number;
  telemetryMinutes: number;
}

export interface AgentDeps {
  cfg: SyncConfigSlice;
  paths: DataPaths;
  db: Db;
  lessons: Lessons;
  log: Logger;
  version: string;
  /** into the local broker (relay of down-messages, progress) */
  publishLocal: (topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain: boolean }) => Promise<void>;
  /** the one-time code given with --enroll */
  enrollCode?: string | undefined;
  /** reconnect delays of the bridge (tests shorten them) */
  backoff?: { baseMs: number; capMs: number } | undefined;
  enrollRetryMs?: number | undefined;
  /** the retained release topic to follow, and what to do with its messages (issue 11 item 7) */
  release?: { topic: string; offer: (payload: Buffer) => void } | undefined;
}

export class SyncAgent implements Service {
  readonly name = 'sync';
  readonly mirror: CatalogMirror;
  creds: Credentials | undefined;
  bridge: BridgeService | undefined;
  engine: SyncService | undefined;
  outbox: Outbox | undefined;
  /** the secret `yachay sync now` shows the running box (DIR/sync/control.json, 0600) */
  readonly controlToken = randomBytes(24).toString('base64url');
  private telemetry: Telemetry | undefined;
  private retry: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastEnrollError: string | undefined;

  constructor(private readonly d: AgentDeps) {
    this.mirror = new CatalogMirror(d.db);
  }

  /** the school in topics: the enrolled one when there is one */
  get school(): string | undefined { return this.creds?.school; }

  /**
   * Loads the credentials or exchanges the code, before anything starts: a wrong, expired, used
   * or revoked code throws (start stops with it); an unreachable hub is retried after start.
   */
  async prepare(): Promise<void> {
    // a bad window or zone is a config error at start, not a silent box that never syncs
    parseWindow(this.d.cfg.window);
    try { localClock(Date.now(), this.d.cfg.timeZone); } catch {
      throw new YachayError('YCH_ERR_CONFIG', `sync.timeZone: unknown time zone "${this.d.cfg.timeZone}" (e.g. America/Lima)`);
    }
    this.creds = await loadCredentials(this.d.paths.sync);
    if (this.creds) {
      if (this.d.enrollCode) this.d.log.warn({ school: this.creds.school }, 'already enrolled: --enroll ignored (delete DIR/sync/ to enroll again)');
      return;
    }
    if (!this.d.enrollCode) return;
    if (!this.d.cfg.hub) throw new YachayError('YCH_ERR_USAGE', '--enroll needs --hub URL (the hub that printed the code)');
    await this.tryEnroll();
  }

  private async tryEnroll(): Promise<boolean> {
    try {
      this.creds = await enroll({ hub: this.d.cfg.hub, code: this.d.enrollCode!, syncDir: this.d.paths.sync, hubKeyFile: this.d.paths.hubKey, hostname: hostname(), version: this.d.version });
      this.lastEnrollError = undefined;
      this.d.log.info({ school: this.creds.school, channels: this.creds.channels }, 'enrolled with the hub');
      return true;
    } catch (err) {
      if (isRefusal(err)) throw err;
      this.lastEnrollError = (err as Error).message;
      this.d.log.warn({ err: this.lastEnrollError }, 'hub not reachable for enrollment: the box starts and tries again');
      return false;
    }
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (this.creds) { await this.startParts(); return; }
    if (!this.d.enrollCode) return;
    const every = this.d.enrollRetryMs ?? 60_000;
    const again = (): void => {
      this.retry = setTimeout(() => {
        this.tryEnroll().then((ok) => (ok && !this.stopped ? this.startParts() : again()), (err: unknown) => {
          // refused after a first unreachable attempt: said in the log and /api/sync, not retried
          this.lastEnrollError = (err as Error).message;
          this.d.log.error({ err }, 'enrollment refused');
        });
      }, every);
      this.retry.unref();
    };
    again();
  }

  private async startParts(): Promise<void> {
    const creds = this.creds!;
    const { cfg, log } = this.d;
    const hubKeyPem = await readFile(this.d.paths.hubKey, 'utf8');
    const outbox = new Outbox(this.d.db, creds.school, { maxRows: cfg.outboxMaxRows, maxBytes: cfg.outboxMaxBytes });
    outbox.onDiskRefused = (err) => log.error({ err, code: 'YCH_ERR_DISK_FULL' }, 'disco lleno / disk full: messages for the hub are held in memory until there is room (free disk space)');
    const engine = new SyncService({
      settings: cfg, school: creds.school, channels: creds.channels, hubOrigin: creds.origin, hubKeyPem,
      db: this.d.db, lessons: this.d.lessons, mirror: this.mirror, outbox, store: this.d.paths.store, originRoot: this.d.paths.origin,
      log: log.child({ svc: 'sync' }),
      publishLocal: (topic, payload) => { this.d.publishLocal(topic, payload, { qos: 0, retain: false }).catch(() => undefined); },
    });
    const bridge = new BridgeService({
      creds, outbox, mirror: this.mirror, version: this.d.version, log: log.child({ svc: 'bridge' }), backoff: this.d.backoff,
      extraFilters: this.d.release ? [this.d.release.topic] : [],
      relay: (topic, payload, retain) => this.d.publishLocal(topic, payload, { qos: 1, retain }),
      onDown: (kind, rest, payload) => {
        if (kind === 'release') this.d.release?.offer(payload);
        else if (kind === 'cmd' && rest === 'sync-now') engine.now();
        else if (kind !== 'cmd') engine.wake();
      },
    });
    this.outbox = outbox; this.engine = engine; this.bridge = bridge;
    await bridge.start();
    await engine.start();
    this.telemetry = new Telemetry({ school: creds.school, version: this.d.version, dataDir: this.d.paths.root, outbox, engine, lessonCount: () => this.d.lessons.list({}).length, log, everyMs: cfg.telemetryMinutes * 60_000 });
    this.telemetry.start();
  }

  /** `yachay sync now` finds the running box here */
  async writeControl(url: string): Promise<void> {
    // an unenrolled box has no sync folder yet, and `yachay sync now` still needs to find it
    await mkdir(this.d.paths.sync, { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(this.d.paths.sync, 'control.json'), JSON.stringify({ url, token: this.controlToken, pid: process.pid }) + '\n', { mode: 0o600 });
  }

  status(): Record<string, unknown> {
    const b = this.bridge;
    const base = this.engine?.status() ?? { state: this.creds ? 'idle' : 'unenrolled', window: this.d.cfg.window, nextWindowAt: null, queue: [], lastReport: null };
    return {
      ...base,
      enrolled: !!this.creds, school: this.creds?.school ?? null, channels: this.creds?.channels ?? [],
      hub: { connected: b?.connected ?? false, lastSeen: b?.lastSeen ?? null, url: this.creds?.hub ?? (this.d.cfg.hub || null), enrollError: this.lastEnrollError ?? null },
      outbox: this.outbox?.size() ?? { rows: 0, bytes: 0 },
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.telemetry?.stop();
    await this.engine?.stop();
    await this.bridge?.stop();
  }
}
