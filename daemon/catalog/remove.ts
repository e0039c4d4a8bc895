import { readFile, readdir, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Db } from '../db/db.js';
import type { DataPaths } from '../paths.js';
import type { Logger } from '../log.js';
import { YachayError } from '../errors.js';
import { BlobStore, originPath, removeManifest } from '../pkg/origin.js';
import type { Lesson, Lessons } from './lessons.js';

/**
 * The one way a lesson leaves the box, whoever asks: a teacher on the page, `yachay lessons
 * delete`, the sync's disk quota. In this order, so that no reader ever meets half a lesson:
 *
 *   1. its running job is aborted through the worker's abort path and waited for (when the
 *      caller runs the worker; see `cancel`);
 *   2. the lesson row and its jobs go in one transaction: from here no page lists it and no
 *      worker leases its job (a worker in another process loses its lease at the next
 *      heartbeat, which aborts it);
 *   3. its files: the package folder and any temp folder of an interrupted encode, its origin
 *      manifest and signature, the blobs that manifest named and no other manifest names, and
 *      a teacher's recording in sources/ that no other lesson uses.
 *
 * Blobs are collected by name from the removed manifest only, never by sweeping the whole
 * store: a blob fetched for a lesson still being synced is not yet named by any manifest.
 */
export interface RemoveDeps {
  db: Db;
  lessons: Lessons;
  /** without `sources` a teacher's recording is left in place (the quota never removes one) */
  paths: Pick<DataPaths, 'store' | 'origin'> & Partial<Pick<DataPaths, 'sources'>>;
  log?: Logger | undefined;
  /**
   * Aborts these jobs if this process runs them and resolves when they have stopped
   * (WorkerService.cancel). Absent (a CLI next to a running box): a job whose lease is alive
   * makes the removal refuse, since its encoder could publish after the files are gone.
   */
  cancel?: ((jobIds: number[]) => Promise<unknown>) | undefined;
  /** told once the lesson is gone from the catalog (the box publishes it over MQTT) */
  removed?: ((lesson: Lesson) => void) | undefined;
  now?: () => number;
}

export interface RemoveOptions {
  /** blobs to keep although no manifest names them yet (the sync fetching a lesson) */
  keepBlobs?: Iterable<string> | undefined;
}

export interface Removed {
  lesson: Lesson;
  jobs: number[];
  /** bytes of blobs deleted from the origin (a hard-linked package frees its bytes here) */
  blobBytes: number;
  sourceRemoved: boolean;
}

interface JobRow { id: number; state: string; lease_until: number | null }

/** optimize jobs (and any other kind) whose payload names this lesson */
function jobsOf(db: Db, lessonId: string): JobRow[] {
  return db.prepare(`SELECT id, state, lease_until FROM jobs WHERE json_extract(payload_json, '$.lessonId') = ?`).all(lessonId) as JobRow[];
}

/** the sha256 of every file a manifest names; empty when it is missing or unreadable */
async function manifestBlobs(originRoot: string, id: string): Promise<string[]> {
  try {
    const m = JSON.parse(await readFile(join(originRoot, originPath.manifest(id)), 'utf8')) as { files?: Array<{ sha256?: unknown }> };
    return (m.files ?? []).map((f) => f.sha256).filter((s): s is string => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s));
  } catch {
    return [];
  }
}

/** every blob the remaining manifests name */
export async function namedBlobs(originRoot: string): Promise<Set<string>> {
  const named = new Set<string>();
  let names: string[] = [];
  try { names = await readdir(join(originRoot, 'manifests')); } catch { return named; }
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    for (const sha of await manifestBlobs(originRoot, n.slice(0, -'.json'.length))) named.add(sha);
  }
  return named;
}

function inside(dir: string, p: string): boolean {
  const rel = relative(resolve(dir), resolve(p));
  return rel !== '' && rel.split(sep)[0] !== '..' && !isAbsolute(rel);
}

/**
 * Removes lesson `id` from the catalog and the disk; undefined when there is no such lesson.
 * Throws YCH_ERR_USAGE when its job runs in another process and `cancel` cannot stop it.
 */
export async function removeLesson(deps: RemoveDeps, id: string, opts: RemoveOptions = {}): Promise<Removed | undefined> {
  const { db, lessons, paths } = deps;
  const now = deps.now ?? Date.now;
  const lesson = lessons.get(id);
  if (!lesson) return undefined;
  const jobs = jobsOf(db, id);
  const leased = jobs.filter((j) => j.state === 'leased');
  if (leased.length) {
    if (deps.cancel) await deps.cancel(leased.map((j) => j.id));
    else {
      const live = leased.find((j) => (j.lease_until ?? 0) > now());
      if (live) {
        throw new YachayError('YCH_ERR_USAGE', `lesson ${id} is being optimized (job ${live.id}) by the running box: delete it from the teacher page, or stop the box first`);
      }
    }
  }
  const blobs = await manifestBlobs(paths.origin, id);
  let gone = false; let last: JobRow[] = [];
  db.transaction(() => {
    // jobs enqueued meanwhile (a re-encode) go too: read again inside the transaction
    last = jobsOf(db, id);
    for (const j of last) db.prepare('DELETE FROM jobs WHERE id = ?').run(j.id);
    gone = lessons.remove(id);
  }).immediate();
  if (!gone) return undefined;
  deps.removed?.(lesson);
  // a job leased between the abort and the transaction: stopped before its files go
  const late = last.filter((j) => j.state === 'leased' && !leased.some((l) => l.id === j.id)).map((j) => j.id);
  if (late.length && deps.cancel) await deps.cancel(late);

  await rm(join(paths.store, lesson.path ?? id), { recursive: true, force: true });
  if (lesson.path && lesson.path !== id) await rm(join(paths.store, id), { recursive: true, force: true });
  // what a killed encode left: .<id>.tmp-<pid>
  for (const n of await readdir(paths.store).catch(() => [] as string[])) {
    if (n.startsWith(`.${id}.tmp-`)) await rm(join(paths.store, n), { recursive: true, force: true });
  }

  await removeManifest(paths.origin, id);
  let blobBytes = 0;
  if (blobs.length) {
    const keep = await namedBlobs(paths.origin);
    for (const sha of opts.keepBlobs ?? []) keep.add(sha);
    const store = new BlobStore(paths.origin);
    for (const sha of new Set(blobs)) {
      if (keep.has(sha)) continue;
      const p = store.path(sha);
      try {
        const { size } = await stat(p);
        await rm(p, { force: true });
        blobBytes += size;
      } catch { /* already gone */ }
    }
  }

  let sourceRemoved = false;
  const sources = paths.sources;
  const src = sources && lesson.source && (isAbsolute(lesson.source) ? lesson.source : resolve(sources, lesson.source));
  if (lesson.origin === 'local' && sources && src && inside(sources, src)) {
    const shared = (db.prepare('SELECT COUNT(*) AS n FROM lessons WHERE source IN (?, ?)').get(src, lesson.source) as { n: number }).n > 0;
    if (!shared) {
      await rm(src, { force: true });
      sourceRemoved = true;
    }
  }
  deps.log?.info({ lessonId: id, origin: lesson.origin, blobBytes, sourceRemoved }, 'lesson removed');
  const ids = [...new Set([...jobs, ...last].map((j) => j.id))];
  return { lesson, jobs: ids, blobBytes, sourceRemoved };
}
