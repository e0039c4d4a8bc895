import type { Lessons } from '../catalog/lessons.js';
import type { Db } from '../db/db.js';
import { YachayError, isYachayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Service } from '../service.js';
import { TokenBucket, fetchBlob, fetchBytes } from '../pkg/fetch.js';
import { installLesson, missingBlobs } from '../pkg/install.js';
import type { Manifest, ManifestFile } from '../pkg/manifest.js';
import { BlobStore, originPath } from '../pkg/origin.js';
import { verifyManifest } from '../pkg/sign.js';
import type { CatalogEntry, CatalogMirror } from './mirror.js';
import type { Outbox } from './outbox.js';
import { makeRoom } from './quota.js';
import { topics } from './topics.js';
import { HubClock, inWindow, nextWindowAt, parseWindow } from './window.js';
import type { SyncWindow } from './window.js';

/**
 * What the school needs, fetched when the link is the school's: teachers' requests first, then
 * the hub's assignments, then the school's channels; inside the night window (or when told
 * "now"), under one bandwidth cap. Per lesson: the signed manifest is checked before anything
 * else, only blobs the box lacks are fetched (Range-resumed, sha256-checked, a bad one fetched
 * once more), then the lesson is installed atomically and acknowledged to the hub.
 */
export interface SyncSettings {
  window: string;
  timeZone: string;
  rateKbps: number;
  quotaBytes: number;
  /** a peer box (or USB-backed server) to take bytes from instead of the hub's origin */
  origin?: string | undefined;
  /** between checks of the window and the catalog */
  tickMs?: number | undefined;
  /** first wait before retrying a link that brings no bytes (doubles; default 1 s) */
  retryBaseMs?: number | undefined;
  /**
   * blobs fetched at once, all under the one token bucket (default 4). One at a time, each
   * request waits a 600 ms satellite round trip and TCP's slow start after the pause: bench:sync
   * measured 82 s for a lesson one at a time and 48 s with four in flight (ideal 28 s)
   */
  fetchLanes?: number | undefined;
}

export interface SyncDeps {
  settings: SyncSettings;
  school: string;
  channels: string[];
  /** the hub's origin from enrollment */
  hubOrigin: string;
  hubKeyPem: string;
  db: Db;
  lessons: Lessons;
  mirror: CatalogMirror;
  outbox: Outbox;
  store: string;
  originRoot: string;
  log: Logger;
  /** local progress messages (the teacher page) */
  publishLocal?: ((topic: string, payload: string) => void) | undefined;
  clock?: HubClock | undefined;
  bucket?: TokenBucket | undefined;
  /** ms a blob may stall before the link counts as dropped */
  idleMs?: number | undefined;
}

export interface QueueItem { id: string; title: string; bytes: number; done: number; why: 'request' | 'assign' | 'channel' }
export interface SyncReport { at: number; bytes: number; seconds: number; installed: number; lessons: string[]; failed: Array<{ id: string; code: string; message: string }> }
export type SyncState = 'idle' | 'waiting' | 'syncing' | 'offline';

export class SyncService implements Service {
  readonly name = 'sync';
  readonly clock: HubClock;
  readonly bucket: TokenBucket;
  readonly window: SyncWindow;
  state: SyncState = 'idle';
  queue: QueueItem[] = [];
  lastReport: SyncReport | undefined;
  /** when the last run hit an unreachable hub: retries back off from it */
  private failures = 0;
  private retryAt = 0;
  private forced = false;
  private running: Promise<SyncReport> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private abort = new AbortController();
  private lastProgress = 0;
  private readonly blobs: BlobStore;
  private readonly log: Logger;

  constructor(private readonly d: SyncDeps) {
    this.clock = d.clock ?? new HubClock();
    this.bucket = d.bucket ?? new TokenBucket(d.settings.rateKbps);
    this.window = parseWindow(d.settings.window);
    this.blobs = new BlobStore(d.originRoot);
    this.log = d.log;
  }

  private get origin(): string {
    const o = this.d.settings.origin || this.d.hubOrigin;
    return o.endsWith('/') ? o : `${o}/`;
  }

  async start(): Promise<void> {
    this.abort = new AbortController();
    const tick = this.d.settings.tickMs ?? 60_000;
    this.timer = setInterval(() => { void this.tick(); }, tick);
    this.timer.unref();
    setImmediate(() => { void this.tick(); });
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.abort.abort(new YachayError('YCH_ERR_ABORTED', 'sync stopped'));
    await this.running?.catch(() => undefined);
  }

  /** `yachay sync now`, the admin button and the hub's cmd/sync-now: run outside the window */
  now(): void {
    this.forced = true;
    this.retryAt = 0;
    void this.tick();
  }

  /** something changed (a catalog entry, a request): look again soon, within the window */
  wake(): void {
    setImmediate(() => { void this.tick(); });
  }

  /** the next time the window opens (by the hub's clock when the box's own is implausible) */
  nextWindowAt(): number | undefined {
    const t = this.clock.now();
    return t === undefined ? undefined : nextWindowAt(this.window, t, this.d.settings.timeZone);
  }

  /** whether the link may be used now; undefined while the time is unknown */
  open(): boolean | undefined {
    const t = this.clock.now();
    return t === undefined ? undefined : inWindow(this.window, t, this.d.settings.timeZone);
  }

  private async tick(): Promise<void> {
    if (this.running || this.abort.signal.aborted) return;
    if (!this.forced && Date.now() < this.retryAt) return;
    if (!this.forced && this.clock.now() === undefined) await this.learnTime();
    const open = this.forced || this.open() === true;
    if (!open) { this.state = this.wanted().length ? 'waiting' : 'idle'; return; }
    if (this.wanted().length === 0) { this.forced = false; this.state = 'idle'; return; }
    this.forced = false;
    try { await this.run(); } catch (err) { this.log.warn({ err }, 'sync run failed'); }
  }

  /** a box woken in 1970 asks the origin for the time before deciding whether it is night */
  private async learnTime(): Promise<void> {
    try {
      // any answer carries a Date header; a small path, not the hub's front page
      const r = await fetchBytes(new URL('manifests/', this.origin).href, { signal: this.abort.signal, maxBytes: 1 << 20, idleMs: 30_000 });
      this.clock.observe(r.date);
    } catch (err) {
      this.log.debug({ err }, 'origin time not known yet');
    }
  }

  /** what the school should hold and does not, in priority order */
  wanted(): Array<{ entry: CatalogEntry; why: QueueItem['why'] }> {
    const out: Array<{ entry: CatalogEntry; why: QueueItem['why'] }> = [];
    const seen = new Set<string>();
    const add = (e: CatalogEntry | undefined, why: QueueItem['why']): void => {
      if (!e || seen.has(e.id)) return;
      seen.add(e.id);
      const have = this.d.lessons.get(e.id);
      if (have?.origin === 'local') return; // a teacher's lesson with the same id is never replaced
      if (have && have.status === 'ready' && (have.version ?? 0) >= e.version) return;
      out.push({ entry: e, why });
    };
    for (const r of this.d.mirror.requests()) add(this.d.mirror.get(r.id), 'request');
    const rows = this.d.mirror.list();
    for (const r of rows) if (r.kind === 'assign') add(r.entry, 'assign');
    for (const r of rows) if (r.kind === 'catalog' && this.d.channels.includes(r.entry.channel)) add(r.entry, 'channel');
    return out;
  }

  /** One sync pass over everything wanted now, whatever the window (for tests and the bench). */
  runOnce(): Promise<SyncReport> {
    return this.run();
  }

  private run(): Promise<SyncReport> {
    this.running ??= this.pass().finally(() => { this.running = undefined; });
    return this.running;
  }

  private async pass(): Promise<SyncReport> {
    const t0 = Date.now();
    const want = this.wanted();
    this.queue = want.map((w) => ({ id: w.entry.id, title: w.entry.title, bytes: w.entry.bytes, done: 0, why: w.why }));
    this.state = 'syncing';
    this.progress(true);
    const report: SyncReport = { at: 0, bytes: 0, seconds: 0, installed: 0, lessons: [], failed: [] };
    let offline = false;
    for (const [i, w] of want.entries()) {
      if (this.abort.signal.aborted) break;
      const item = this.queue[i]!;
      try {
        report.bytes += await this.syncLesson(w.entry, item);
        report.installed++;
        report.lessons.push(w.entry.id);
      } catch (err) {
        if (this.abort.signal.aborted) break;
        const code = isYachayError(err) ? err.code : 'YCH_ERR_INTERNAL';
        report.failed.push({ id: w.entry.id, code, message: (err as Error).message });
        this.log.warn({ err, lessonId: w.entry.id }, 'lesson not synced');
        // a dead link fails every next lesson too: stop here and retry later (the .part stays);
        // so does a full disk (the partial blobs stay for when room is made)
        if (code === 'YCH_ERR_HUB_UNREACHABLE') { offline = true; break; }
        if (code === 'YCH_ERR_DISK_FULL') break;
      }
    }
    report.seconds = (Date.now() - t0) / 1000;
    report.at = this.clock.now() ?? Date.now();
    this.lastReport = report;
    if (offline) {
      this.failures++;
      this.retryAt = Date.now() + Math.min(15 * 60_000, 30_000 * 2 ** Math.min(this.failures - 1, 5)) * (0.5 + Math.random() / 2);
    } else {
      this.failures = 0;
    }
    this.state = offline ? 'offline' : 'idle';
    this.queue = this.queue.filter((q) => !report.lessons.includes(q.id));
    if (report.installed || report.failed.length) {
      this.d.outbox.add(topics.report(this.d.school), JSON.stringify({ at: report.at, bytes: report.bytes, seconds: report.seconds, installed: report.installed, lessons: report.lessons, failed: report.failed }));
    }
    this.progress(true);
    return report;
  }

  private async syncLesson(e: CatalogEntry, item: QueueItem): Promise<number> {
    const signal = this.abort.signal;
    const mUrl = new URL(originPath.manifest(e.id), this.origin).href;
    const got = await fetchBytes(mUrl, { signal, maxBytes: 8 << 20, idleMs: this.d.idleMs });
    this.clock.observe(got.date);
    if (got.status === 404) throw new YachayError('YCH_ERR_PACKAGE_INVALID', `${mUrl}: the origin has no such manifest (404)`);
    if (got.status !== 200) throw new YachayError('YCH_ERR_HUB_UNREACHABLE', `${mUrl}: HTTP ${got.status}`);
    const sigRes = await fetchBytes(new URL(originPath.signature(e.id), this.origin).href, { signal, maxBytes: 4096, idleMs: this.d.idleMs });
    const sig = sigRes.status === 200 ? sigRes.body.toString('utf8').trim() : undefined;
    // nothing of a lesson is fetched before its manifest is proven to be the hub's
    const m = verifyManifest(got.body, sig, this.d.hubKeyPem, mUrl);
    if (m.id !== e.id) throw new YachayError('YCH_ERR_PACKAGE_INVALID', `${mUrl}: the manifest names lesson ${m.id}, not ${e.id}`);
    const missing = await missingBlobs(m, this.blobs);
    item.bytes = m.bytes;
    item.done = m.bytes - missing.reduce((n, f) => n + f.size, 0);
    await makeRoom({ db: this.d.db, lessons: this.d.lessons, store: this.d.store, originRoot: this.d.originRoot, quotaBytes: this.d.settings.quotaBytes, log: this.log },
      missing.reduce((n, f) => n + f.size, 0), new Set([e.id]), m.files.map((f) => f.sha256));
    let fetched = 0;
    const todo = [...missing];
    let failure: { err: unknown } | undefined;
    // the first failure stops the lanes from taking new blobs; the ones in flight finish (or
    // fail) before the lesson's error is raised, so no fetch writes after the pass has ended
    const lane = async (): Promise<void> => {
      for (let f = todo.shift(); f && !failure; f = todo.shift()) {
        // read the result first: `fetched += await …` would add to a stale total across lanes
        try { const n = await this.fetchFile(m, f, item); fetched += n; } catch (err) { failure ??= { err }; }
      }
    };
    const lanes = Math.max(1, Math.min(this.d.settings.fetchLanes ?? 4, todo.length));
    await Promise.all(Array.from({ length: lanes }, lane));
    if (failure) throw failure.err;
    await installLesson({
      store: this.d.store, blobs: this.blobs, manifest: m, manifestBytes: got.body, signature: sig!,
      lessons: this.d.lessons, origin: this.d.settings.origin ? 'peer' : 'hub', signal,
    });
    this.d.outbox.add(topics.ack(this.d.school, m.id), JSON.stringify({ version: m.version, at: this.clock.now() ?? Date.now() }));
    this.d.mirror.fulfilled(m.id);
    this.log.info({ lessonId: m.id, version: m.version, fetched, files: missing.length }, 'lesson synced');
    return fetched;
  }

  /**
   * One blob; a blob whose bytes do not hash right is fetched once more, then named in the error.
   * A link that drops mid-blob is resumed at once (Range from the .part) as long as each try
   * brings bytes; a link that brings nothing is tried a few times with backoff, then the pass
   * ends and the whole sync retries later.
   */
  private async fetchFile(m: Manifest, f: ManifestFile, item: QueueItem): Promise<number> {
    const url = new URL(originPath.blob(f.sha256), this.origin).href;
    let got = 0;
    const onBytes = (n: number): void => { got += n; item.done += n; this.progress(false); };
    let total = 0; let idle = 0; let hashRetried = false;
    const base = this.d.settings.retryBaseMs ?? 1000;
    for (;;) {
      got = 0;
      try {
        const r = await fetchBlob({ url, dest: this.blobs.path(f.sha256), sha256: f.sha256, size: f.size, bucket: this.bucket, signal: this.abort.signal, onBytes, idleMs: this.d.idleMs });
        return total + r.fetched;
      } catch (err) {
        total += got;
        if (isYachayError(err, 'YCH_ERR_HUB_UNREACHABLE') && !this.abort.signal.aborted) {
          idle = got > 0 ? 0 : idle + 1;
          if (idle <= 3) {
            this.log.info({ lessonId: m.id, file: f.path, got, idle }, 'link dropped mid-blob: resuming');
            await sleep(got > 0 ? Math.min(base, 200) : base * 2 ** (idle - 1), this.abort.signal);
            continue;
          }
        }
        if (isYachayError(err, 'YCH_ERR_PACKAGE_HASH')) {
          item.done = Math.max(0, item.done - f.size);
          if (!hashRetried) { hashRetried = true; this.log.warn({ lessonId: m.id, file: f.path }, 'blob altered or damaged on the way: fetched again'); continue; }
          throw new YachayError('YCH_ERR_PACKAGE_HASH', `lesson ${m.id}: file ${f.path} (blob ${f.sha256}) differs from the signed manifest twice: ${(err as Error).message}`, { cause: err });
        }
        throw err;
      }
    }
  }

  /** progress on the local broker at most once a second (and at each start and end) */
  private progress(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastProgress < 1000) return;
    this.lastProgress = now;
    this.d.publishLocal?.(topics.progress(this.d.school), JSON.stringify(this.status()));
  }

  status(): Record<string, unknown> {
    return {
      state: this.state,
      window: this.window.always ? 'always' : this.window.text,
      open: this.open() ?? null,
      nextWindowAt: this.nextWindowAt() ?? null,
      clock: this.clock.localPlausible() ? 'local' : this.clock.known ? 'hub' : 'unknown',
      queue: this.queue.map((q) => ({ id: q.id, title: q.title, bytes: q.bytes, done: q.done })),
      lastReport: this.lastReport ?? null,
    };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(t); reject(signal.reason); };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
