import { readFile, readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Db } from '../db/db.js';
import type { Lessons } from '../catalog/lessons.js';
import type { Logger } from '../log.js';
import { YachayError } from '../errors.js';
import { BlobStore, collectGarbage } from '../pkg/origin.js';
import { removeLesson } from '../catalog/remove.js';
import type { Manifest } from '../pkg/manifest.js';

/**
 * Room on the SD card for what the sync brings. With a quota, synced blobs may use that many
 * bytes; without one, the disk keeps 10% free. When a lesson does not fit, synced lessons go,
 * least played first (plays / last_played_at, counted when a master playlist is served); a
 * teacher's own upload (origin 'local') is never evicted.
 */
export interface QuotaDeps {
  db: Db;
  lessons: Lessons;
  store: string;
  originRoot: string;
  /** 0: keep 10% of the disk free */
  quotaBytes: number;
  log: Logger;
}

const KEEP_FREE = 0.1;

export async function blobBytes(originRoot: string): Promise<number> {
  const blobs = new BlobStore(originRoot);
  let n = 0;
  for (const sha of await blobs.list()) n += await stat(blobs.path(sha)).then((s) => s.size, () => 0);
  return n;
}

export async function availableBytes(d: Pick<QuotaDeps, 'originRoot' | 'quotaBytes'>): Promise<number> {
  if (d.quotaBytes > 0) return d.quotaBytes - await blobBytes(d.originRoot);
  const s = await statfs(d.originRoot);
  return s.bavail * s.bsize - KEEP_FREE * s.blocks * s.bsize;
}

async function keptBlobs(originRoot: string, extra: Iterable<string>): Promise<Set<string>> {
  const keep = new Set(extra);
  let names: string[] = [];
  try { names = await readdir(join(originRoot, 'manifests')); } catch { return keep; }
  for (const n of names.filter((x) => x.endsWith('.json'))) {
    try {
      const m = JSON.parse(await readFile(join(originRoot, 'manifests', n), 'utf8')) as Manifest;
      for (const f of m.files) keep.add(f.sha256);
    } catch { /* a manifest being replaced: its blobs are named by the new one */ }
  }
  return keep;
}

/** the order lessons leave in: least played, then longest unplayed, then oldest */
export function evictionOrder(db: Db, spare: ReadonlySet<string>): string[] {
  const rows = db.prepare(`SELECT id FROM lessons WHERE origin != 'local' AND status = 'ready'
    ORDER BY plays ASC, coalesce(last_played_at, 0) ASC, updated_at ASC`).all() as Array<{ id: string }>;
  return rows.map((r) => r.id).filter((id) => !spare.has(id));
}

/**
 * Frees space until `need` more bytes fit, sparing `spare` (the lesson being fetched) and the
 * blobs in `keepBlobs` (fetched for it, not yet named by an installed manifest). Returns the
 * evicted lesson ids; YCH_ERR_DISK_FULL when even evicting every synced lesson is not enough.
 */
export async function makeRoom(d: QuotaDeps, need: number, spare: ReadonlySet<string>, keepBlobs: Iterable<string>): Promise<string[]> {
  const evicted: string[] = [];
  let avail = await availableBytes(d);
  if (avail >= need) return evicted;
  const keepExtra = [...keepBlobs];
  for (const id of evictionOrder(d.db, spare)) {
    // the one removal every caller uses (catalog/remove.ts): row, jobs, package, manifest, its blobs
    const r = await removeLesson({ db: d.db, lessons: d.lessons, paths: { store: d.store, origin: d.originRoot } }, id, { keepBlobs: keepExtra });
    evicted.push(id);
    // blobs no manifest names any more (an install that failed half-way) go too
    const freed = (r?.blobBytes ?? 0) + await collectGarbage(d.originRoot, await keptBlobs(d.originRoot, keepExtra));
    d.log.info({ lessonId: id, freed }, 'synced lesson evicted for space');
    avail = await availableBytes(d);
    if (avail >= need) return evicted;
  }
  throw new YachayError('YCH_ERR_DISK_FULL', `a lesson needs ${need} bytes but only ${Math.max(0, Math.round(avail))} are free for synced lessons (${evicted.length} evicted; teachers' lessons are kept)`);
}
