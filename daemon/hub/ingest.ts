import { createHash } from 'node:crypto';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import PgBoss from 'pg-boss';
import type pg from 'pg';
import type { OptimizeConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { NativeKernels } from '../analysis/native.js';
import { loadNative } from '../analysis/native.js';
import { YachayError, isYachayError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { optimize } from '../optimize/optimizer.js';
import { forwardingProgress, renditionsOf } from '../jobs/optimize-job.js';
import { LESSON_ID } from '../catalog/lessons.js';
import { CHANNEL, buildManifest } from '../pkg/manifest.js';
import { originPath, publishToOrigin } from '../pkg/origin.js';
import { inTransaction } from './db.js';
import type { CatalogEntry } from './hub-mqtt.js';

/**
 * Ingest: one encode at the hub for every school. Jobs live in pg-boss (queue `hub-optimize`),
 * so hubs on several machines sharing one database share the work. A job runs the box's own
 * optimizer, then signs the manifest and publishes blobs + manifest into the origin, records
 * the lesson (a lesson added again under the same id becomes its next version) and publishes
 * its retained catalog entry.
 */
export const QUEUE = 'hub-optimize';

const PERMANENT = new Set<ErrorCode>(['YCH_ERR_INPUT_MISSING', 'YCH_ERR_INPUT_NOT_MEDIA', 'YCH_ERR_INPUT_CORRUPT', 'YCH_ERR_INPUT_EMPTY',
  'YCH_ERR_INPUT_TOO_LARGE', 'YCH_ERR_ENCODE_REFUSED', 'YCH_ERR_USAGE']);

export interface IngestPayload { id: string; title: string; channel: string; source: string }
export interface IngestOutput { id: string; version: number; bytes: number }

export function lessonIdFrom(title: string): string {
  const s = title.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
    .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80).replace(/-+$/, '');
  return s || 'leccion';
}

export async function openBoss(url: string, opts: { worker: boolean }): Promise<PgBoss> {
  // a CLI that only enqueues leaves maintenance and scheduling to the running hubs
  const boss = new PgBoss({ connectionString: url, max: 4, ...(opts.worker ? {} : { supervise: false, schedule: false }) });
  boss.on('error', () => undefined);
  try {
    await boss.start();
    if (opts.worker) await boss.createQueue(QUEUE).catch((err: Error) => { if (!/exists/i.test(err.message)) throw err; });
  } catch (err) {
    await boss.stop({ graceful: false, wait: true }).catch(() => undefined);
    throw new YachayError('YCH_ERR_HUB_DATABASE', `the hub job queue (pg-boss) cannot start: ${(err as Error).message}`, { cause: err });
  }
  return boss;
}

/** Copies the recording under DIR/sources (the hub keeps what it encoded) and queues it. */
export async function enqueueRecording(boss: PgBoss, dataDir: string, file: string, meta: { title: string; channel: string; id?: string | undefined }): Promise<{ jobId: string; id: string }> {
  const id = meta.id ?? lessonIdFrom(meta.title);
  if (!LESSON_ID.test(id)) throw new YachayError('YCH_ERR_USAGE', `lesson id ${JSON.stringify(id)}: lower-case letters, digits and dashes`);
  if (!CHANNEL.test(meta.channel)) throw new YachayError('YCH_ERR_USAGE', `--channel ${JSON.stringify(meta.channel)}: lower-case letters, digits and dashes`);
  if (!meta.title.trim()) throw new YachayError('YCH_ERR_USAGE', 'hub add needs --title');
  const sources = join(dataDir, 'sources');
  await mkdir(sources, { recursive: true });
  const name = `${Date.now()}-${basename(file).replace(/[^A-Za-z0-9._-]+/g, '_')}`;
  try {
    await copyFile(resolve(file), join(sources, name));
  } catch (err) {
    throw new YachayError('YCH_ERR_INPUT_MISSING', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  // absolute: the hub whose worker takes the job may have another data dir (several hubs, one queue)
  const payload: IngestPayload = { id, title: meta.title.trim(), channel: meta.channel, source: join(sources, name) };
  const jobId = await boss.send(QUEUE, payload, { retryLimit: 1, retryDelay: 5, expireInHours: 6 });
  if (!jobId) throw new YachayError('YCH_ERR_HUB_DATABASE', 'the job queue did not accept the job');
  return { jobId, id };
}

export interface IngestDeps {
  boss: PgBoss;
  pool: pg.Pool;
  dataDir: string;
  originRoot: string;
  privateKey: KeyObject;
  cfg: Readonly<OptimizeConfig>;
  log: Logger;
  /** retained catalog entry (and the assignments of this lesson) once the lesson is recorded */
  announce(entry: CatalogEntry, schools: string[]): Promise<void>;
}

export class IngestWorker {
  private kernels: NativeKernels | undefined;
  private readonly abort = new AbortController();
  private started = false;

  constructor(private readonly d: IngestDeps) {}

  async start(): Promise<void> {
    await this.d.boss.work<IngestPayload>(QUEUE, { batchSize: 1, pollingIntervalSeconds: 1 }, async ([job]) => this.run(job!.id, job!.data));
    this.started = true;
  }

  async run(jobId: string, p: IngestPayload): Promise<IngestOutput> {
    const log = this.d.log.child({ jobId, lesson: p.id });
    this.kernels ??= loadNative();
    const work = join(this.d.dataDir, 'work', `${p.id}-${jobId}`);
    await rm(work, { recursive: true, force: true });
    await mkdir(join(this.d.dataDir, 'work'), { recursive: true });
    const input = isAbsolute(p.source) ? p.source : join(this.d.dataDir, 'sources', p.source);
    log.info('encoding');
    try {
      const result = await optimize({ input, out: work }, {
        cfg: this.d.cfg, log, kernels: this.kernels, signal: this.abort.signal, dataDir: this.d.dataDir,
        progress: forwardingProgress(() => undefined),
      });
      const { entry, schools } = await inTransaction(this.d.pool, async (c) => {
        // two hubs publishing one id take turns: versions never repeat
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`lesson:${p.id}`]);
        const prev = await c.query<{ version: number }>('SELECT version FROM lessons WHERE id = $1', [p.id]);
        const version = (prev.rows[0]?.version ?? 0) + 1;
        const manifest = await buildManifest(work, {
          id: p.id, title: p.title, channel: p.channel, version, durationS: result.input.duration,
          renditions: renditionsOf(result), misses: result.misses,
        });
        const { bytes } = await publishToOrigin(this.d.originRoot, work, manifest, this.d.privateKey);
        await c.query(
          `INSERT INTO lessons (id, title, channel, version, bytes, duration_s, published_at, manifest_sha256) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
           ON CONFLICT (id) DO UPDATE SET title = $2, channel = $3, version = $4, bytes = $5, duration_s = $6, published_at = $7, manifest_sha256 = $8`,
          [p.id, p.title, p.channel, version, manifest.bytes, manifest.durationS, manifest.publishedAt, createHash('sha256').update(bytes).digest('hex')]);
        const assigned = await c.query<{ school: string }>('SELECT school FROM assignments WHERE lesson_id = $1', [p.id]);
        const entry: CatalogEntry = {
          id: p.id, title: p.title, channel: p.channel, version, bytes: manifest.bytes, durationS: manifest.durationS,
          publishedAt: manifest.publishedAt, manifest: originPath.manifest(p.id),
        };
        return { entry, schools: assigned.rows.map((r) => r.school) };
      });
      await this.d.announce(entry, schools);
      log.info({ version: entry.version, bytes: entry.bytes, misses: result.misses.length }, 'lesson published');
      return { id: entry.id, version: entry.version, bytes: entry.bytes };
    } catch (err) {
      if (isYachayError(err) && PERMANENT.has(err.code)) {
        // the same recording fails the same way: no retry (pg-boss 10 retries while retry_count < retry_limit)
        await this.d.pool.query('UPDATE pgboss.job SET retry_limit = retry_count WHERE id = $1', [jobId]).catch(() => undefined);
      }
      throw err;
    } finally {
      // the origin holds hard links to every published file: the work folder costs nothing to drop
      await rm(work, { recursive: true, force: true });
    }
  }

  async stop(): Promise<void> {
    this.abort.abort(new YachayError('YCH_ERR_ABORTED', 'hub stopping'));
    if (this.started) await this.d.boss.offWork(QUEUE).catch(() => undefined);
  }
}

export async function queueDepth(boss: PgBoss): Promise<number> {
  try { return await boss.getQueueSize(QUEUE); } catch { return 0; }
}
