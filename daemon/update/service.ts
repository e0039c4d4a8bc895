import { open, readFile, readdir, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Db } from '../db/db.js';
import { isYachayError } from '../errors.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Logger } from '../log.js';
import type { Service } from '../service.js';
import { fetchBlob } from '../pkg/fetch.js';
import { spawnGroup } from '../media/run.js';
import { originPath } from '../pkg/origin.js';
import type { SyncAgent } from '../sync/agent.js';
import { CatalogMirror } from '../sync/mirror.js';
import { topics } from '../sync/topics.js';
import { releaseTopic, verifyOffer } from './manifest.js';
import type { ReleaseManifest } from './manifest.js';
import { currentVersion, pointLink, switchCurrent, unpackRelease } from './releases.js';
import { addReport, clearPending, flushReports, readPending, refusedVersions, updateDir, writePending } from './state.js';
import type { UpdateReport } from './state.js';
import { RUNNING_VERSION, compareVersions, detectRoot, normalizeArch, releaseDir } from './version.js';

/**
 * The box's side of signed updates (issue 11 item 7). The hub's retained release message is kept
 * in SQLite as it arrives; in the sync's night window (same HubClock, same token bucket, same
 * Range-resumed, sha256-checked fetchBlob as the lessons) a newer release is fetched, its
 * signature and hash checked, unpacked beside the running one, and switched to; guard.ts says
 * who judges it and how it is rolled back.
 *
 * When: the download may run while a lesson encodes (it only uses the link), but the switch —
 * a restart — waits while a job is leased (an encode in progress would be redone) or an upload
 * was written to in the last 10 minutes (a teacher's upload would break): the night window
 * makes both rare, and the unpacked release waits for the next tick.
 */
export interface UpdateSettings {
  enabled: boolean;
  /** `<root>` holding releases/ and current; '' = found from this program's own path */
  root: string;
  /** seconds the new release has to answer /health good */
  healthSeconds: number;
  /** the release topic's arch; '' = this machine's */
  arch: string;
}

export interface UpdateDeps {
  cfg: UpdateSettings;
  dataDir: string;
  db: Db;
  agent: SyncAgent;
  queue: JobQueue;
  uploads: string;
  hubKeyFile: string;
  /** the box's own /health (known once HTTP listens) */
  healthUrl: () => string;
  /** stop the box and exit with UPDATE_EXIT_CODE so the supervisor starts `current` */
  restart: (why: string) => void;
  log: Logger;
  tickMs?: number | undefined;
}

/**
 * The exit status after a switch: 75 (EX_TEMPFAIL, "try again"). systemd restarts it under
 * Restart=always and Restart=on-failure alike (it is not in RestartPreventExitStatus).
 */
export const UPDATE_EXIT_CODE = 75;

const OFFER_KEY = 'update.offer';
const RETRY_FAILED_MS = 60 * 60_000;
const UPLOAD_QUIET_MS = 10 * 60_000;

export class UpdateService implements Service {
  readonly name = 'update';
  readonly arch: string;
  readonly root: string | undefined;
  private readonly mirror: CatalogMirror;
  private timer: NodeJS.Timeout | undefined;
  private working: Promise<void> | undefined;
  private readonly abort = new AbortController();
  /** until start(): an offer that arrives while the box starts is kept, acted on once it runs */
  private stopped = true;
  /** this process is the new release on probation: it installs nothing else meanwhile */
  private probation = false;
  private failed = new Map<string, number>();
  private said = new Set<string>();
  private unpacked = new Set<string>();
  state: 'idle' | 'waiting' | 'fetching' | 'switching' | 'probation' | 'off' = 'idle';

  constructor(private readonly d: UpdateDeps) {
    this.mirror = new CatalogMirror(d.db);
    this.arch = normalizeArch(d.cfg.arch || process.arch);
    this.root = d.cfg.root || detectRoot();
  }

  get topic(): string { return releaseTopic(this.arch); }

  /** a release message from the hub, kept before the hub gets its PUBACK */
  offer(payload: Buffer): void {
    this.mirror.setState(OFFER_KEY, payload.toString('utf8'));
    setImmediate(() => this.tick());
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (!this.d.cfg.enabled) { this.state = 'off'; return; }
    const pending = await readPending(this.d.dataDir);
    if (pending && pending.to === RUNNING_VERSION) {
      this.probation = true;
      this.state = 'probation';
      void this.confirm(pending.from, pending.root);
    } else if (pending && this.root && (await currentVersion(pending.root)) !== pending.to) {
      // a switch that never happened (power cut between the record and the link)
      this.d.log.warn({ pending }, 'stale update record removed');
      await clearPending(this.d.dataDir);
    }
    if (this.root) await this.dropRefused(this.root).catch((err: unknown) => this.d.log.warn({ err }, 'refused releases not removed'));
    this.timer = setInterval(() => this.tick(), this.d.tickMs ?? 60_000);
    this.timer.unref();
    setImmediate(() => this.tick());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.abort.abort();
    await this.working?.catch(() => undefined);
  }

  status(): Record<string, unknown> {
    return { state: this.state, running: RUNNING_VERSION, arch: this.arch, root: this.root ?? null };
  }

  /** the new release: once its own /health is good, it clears the record and says "updated" */
  private async confirm(from: string, root: string): Promise<void> {
    while (!this.stopped) {
      try {
        const res = await fetch(this.d.healthUrl(), { signal: AbortSignal.timeout(3000) });
        const body = await res.json() as { ok?: boolean; version?: string };
        if (res.status === 200 && body.ok === true && body.version === RUNNING_VERSION) break;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (this.stopped) return;
    const p = await readPending(this.d.dataDir);
    if (!p || p.to !== RUNNING_VERSION) return; // the guard was faster and rolled back
    await clearPending(this.d.dataDir);
    await addReport(this.d.dataDir, { outcome: 'updated', from, to: RUNNING_VERSION, at: Date.now() });
    this.probation = false;
    this.state = 'idle';
    this.d.log.info({ from, to: RUNNING_VERSION }, 'update confirmed: this release answers /health');
    await this.prune(root, [RUNNING_VERSION, from]).catch((err: unknown) => this.d.log.warn({ err }, 'old releases not removed'));
    this.tick();
  }

  /** a Pi's SD card holds two releases (the running one and the one to roll back to), not every one */
  private async prune(root: string, keep: string[]): Promise<void> {
    for (const name of await readdir(join(root, 'releases'))) {
      if (keep.includes(name) || name.startsWith('.')) continue;
      await rm(join(root, 'releases', name), { recursive: true, force: true });
      this.d.log.info({ release: name }, 'old release removed');
    }
  }

  /** a rolled-back release stays on disk only until the old one runs again (the guard's log keeps why) */
  private async dropRefused(root: string): Promise<void> {
    const keep = new Set([RUNNING_VERSION, await currentVersion(root)]);
    for (const v of await refusedVersions(this.d.dataDir)) {
      if (keep.has(v)) continue;
      const dir = join(root, 'releases', v);
      if (await stat(dir).then(() => true, () => false)) {
        await rm(dir, { recursive: true, force: true });
        this.d.log.info({ release: v }, 'rolled-back release removed');
      }
    }
  }

  private tick(): void {
    if (this.working || this.stopped || !this.d.cfg.enabled) return;
    this.working = this.step().catch((err: unknown) => {
      this.d.log.error({ err }, 'update step failed');
    }).finally(() => { this.working = undefined; });
  }

  private report(r: UpdateReport): void {
    const outbox = this.d.agent.outbox; const school = this.d.agent.school;
    if (!outbox || !school) return;
    outbox.add(topics.update(school), JSON.stringify(r));
  }

  private async flush(): Promise<void> {
    if (!this.d.agent.outbox || !this.d.agent.school) return;
    await flushReports(this.d.dataDir, (r) => this.report(r));
  }

  /** said once per distinct thing, not at every tick */
  private once(key: string, fn: () => void): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    fn();
  }

  private async step(): Promise<void> {
    await this.flush();
    if (this.probation) return;
    const raw = this.mirror.getState(OFFER_KEY);
    const engine = this.d.agent.engine;
    if (!raw || !engine) return;
    let m: ReleaseManifest;
    try {
      m = verifyOffer(raw, await readFile(this.d.hubKeyFile, 'utf8'), this.topic);
    } catch (err) {
      this.once(`bad:${raw}`, () => {
        this.d.log.error({ err }, 'release refused: nothing installed');
        const code = isYachayError(err) ? err.code : 'YCH_ERR_UPDATE_SIGNATURE';
        this.report({ outcome: 'refused', from: RUNNING_VERSION, to: 'unknown', at: Date.now(), code, reason: (err as Error).message });
      });
      return;
    }
    if (m.arch !== this.arch || compareVersions(m.version, RUNNING_VERSION) <= 0) return;
    if ((await refusedVersions(this.d.dataDir)).has(m.version)) {
      this.once(`refused:${m.version}`, () => this.d.log.warn({ version: m.version }, 'release was rolled back on this box before: not installed again'));
      return;
    }
    if (!this.root) {
      this.once('noroot', () => this.d.log.warn({ version: m.version, dir: releaseDir() }, 'a newer release is offered, but this box does not run from <root>/releases/<version> (set update.root): not installed'));
      return;
    }
    if (Date.now() < (this.failed.get(m.sha256) ?? 0)) return;
    if (engine.open() !== true) { this.state = 'waiting'; return; }
    const bundle = join(updateDir(this.d.dataDir), 'downloads', `${m.sha256}.tar.gz`);
    try {
      if (!(await stat(bundle).then((s) => s.size === m.size, () => false))) {
        this.state = 'fetching';
        this.d.log.info({ version: m.version, bytes: m.size }, 'fetching release');
        const creds = this.d.agent.creds!;
        const origin = creds.origin.endsWith('/') ? creds.origin : `${creds.origin}/`;
        await fetchBlob({ url: new URL(originPath.blob(m.sha256), origin).href, dest: bundle, sha256: m.sha256, size: m.size, bucket: engine.bucket, signal: this.abort.signal });
      }
      // unpacked by this process (the switch may wait for a quiet moment); a folder from before is replaced
      if (!this.unpacked.has(m.version)) {
        await unpackRelease(bundle, this.root, m.version, this.abort.signal);
        this.unpacked.add(m.version);
      }
    } catch (err) {
      if (this.abort.signal.aborted) return;
      this.state = 'idle';
      if (isYachayError(err, 'YCH_ERR_HUB_UNREACHABLE')) { this.d.log.warn({ err: (err as Error).message }, 'release not fetched yet: the link dropped; resumed at the next tick'); return; }
      // a bundle that does not hash right or does not unpack is not tried again for an hour
      this.failed.set(m.sha256, Date.now() + RETRY_FAILED_MS);
      await rm(bundle, { force: true });
      const code = isYachayError(err) ? err.code : 'YCH_ERR_IO';
      this.d.log.error({ err, version: m.version }, 'release refused: nothing switched');
      this.report({ outcome: 'refused', from: RUNNING_VERSION, to: m.version, at: Date.now(), code, reason: (err as Error).message });
      return;
    }
    const busy = await this.busy();
    if (busy) { this.once(`busy:${m.version}:${busy}`, () => this.d.log.info({ version: m.version, busy }, 'release ready: the switch waits')); this.state = 'waiting'; return; }
    await this.switchTo(m, bundle);
  }

  private busy(): Promise<string | undefined> {
    return switchBlocker(this.d.queue, this.d.uploads);
  }

  private async switchTo(m: ReleaseManifest, bundle: string): Promise<void> {
    const root = this.root!;
    const from = basename(releaseDir());
    this.state = 'switching';
    const now = Date.now();
    // the record before the link: whoever runs next knows what is being tried, and until when
    await writePending(this.d.dataDir, { from, to: m.version, deadline: now + this.d.cfg.healthSeconds * 1000, startedAt: now, root, healthUrl: this.d.healthUrl() });
    try {
      await pointLink(root, 'previous', from).catch((err: unknown) => this.d.log.warn({ err }, '`previous` link not set'));
      await switchCurrent(root, m.version);
    } catch (err) {
      await clearPending(this.d.dataDir);
      throw err;
    }
    this.report({ outcome: 'switching', from: RUNNING_VERSION, to: m.version, at: now });
    await rm(bundle, { force: true });
    await this.startGuard();
    this.d.log.warn({ from: RUNNING_VERSION, to: m.version, exit: UPDATE_EXIT_CODE }, 'release installed: restarting into it');
    this.d.restart(`update to ${m.version}`);
  }

  /** the old release's own code judges the new one (guard.ts); its output goes to update/guard.log */
  private async startGuard(): Promise<void> {
    const logFile = await open(join(updateDir(this.d.dataDir), 'guard.log'), 'a');
    try {
      // its own process group, outside the governor's pause and the second Ctrl-C's kill: it must outlive this process
      const child = spawnGroup(process.execPath, [join(releaseDir(), 'bin', 'yachay.mjs'), 'update-guard', '--data-dir', this.d.dataDir], {
        stdio: ['ignore', logFile.fd, logFile.fd], env: { ...process.env, YACHAY_LOG_LEVEL: 'info' },
      });
      child.unref();
      this.d.log.info({ pid: child.pid }, 'update guard started');
    } finally {
      await logFile.close();
    }
  }
}

/** Why a restart must wait now (an encode leased, an upload written to lately), or undefined. */
export async function switchBlocker(queue: Pick<JobQueue, 'stats'>, uploads: string, now = Date.now()): Promise<string | undefined> {
  if (queue.stats().leased > 0) return 'an encode is running';
  for (const name of await readdir(uploads).catch(() => [] as string[])) {
    const s = await stat(join(uploads, name)).catch(() => undefined);
    if (s && now - s.mtimeMs < UPLOAD_QUIET_MS) return 'an upload is in progress';
  }
  return undefined;
}
