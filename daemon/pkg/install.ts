import { copyFile, link, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { YachayError } from '../errors.js';
import { ioError, publishDir } from '../util/atomic.js';
import { remuxDownloads } from '../optimize/package.js';
import type { LessonOrigin, Lessons } from '../catalog/lessons.js';
import type { Manifest, ManifestFile } from './manifest.js';
import { BlobStore, writeManifest } from './origin.js';

/** The files of a manifest this box does not hold yet: what a sync fetches, nothing more. */
export async function missingBlobs(manifest: Manifest, blobs: BlobStore): Promise<ManifestFile[]> {
  const seen = new Set<string>(); const out: ManifestFile[] = [];
  for (const f of manifest.files) {
    if (seen.has(f.sha256)) continue;
    seen.add(f.sha256);
    if (!(await blobs.has(f.sha256))) out.push(f);
  }
  return out;
}

export interface InstallRequest {
  /** the box's content store (store/<id>/ is the lesson's folder) */
  store: string;
  blobs: BlobStore;
  manifest: Manifest;
  manifestBytes: Buffer;
  signature: string;
  lessons: Lessons;
  origin: Exclude<LessonOrigin, 'local'>;
  signal?: AbortSignal | undefined;
}

/**
 * Makes a lesson whose blobs are all held appear whole, or not at all: the folder is built from
 * hard links to the blobs (no second copy on the SD card) in a temp folder, the phone downloads
 * are remuxed from it, and one rename puts it in place over any older version. The signed
 * manifest is kept next to the blobs, so the box can export the lesson and serve it to a peer.
 */
export async function installLesson(r: InstallRequest): Promise<void> {
  const { manifest: m } = r;
  const missing = await missingBlobs(m, r.blobs);
  if (missing.length) {
    throw new YachayError('YCH_ERR_PACKAGE_INVALID', `lesson ${m.id}: ${missing.length} file(s) not fetched yet (first: ${missing[0]!.path})`);
  }
  const dest = join(r.store, m.id);
  const tmp = join(r.store, `.${m.id}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  try {
    for (const f of m.files) {
      const to = join(tmp, f.path);
      await mkdir(dirname(to), { recursive: true });
      try { await link(r.blobs.path(f.sha256), to); } catch { await copyFile(r.blobs.path(f.sha256), to); }
    }
    const v0 = [...m.renditions].map((x) => x.id).filter((id) => /^v\d+$/.test(id)).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))[0];
    await remuxDownloads(tmp, { v0, aac: m.files.some((f) => f.path === 'a-aac/index.m3u8') }, r.signal);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof YachayError) throw err;
    throw ioError(err, `installing lesson ${m.id}`);
  }
  await writeManifest(r.blobs.root, m.id, r.manifestBytes, r.signature);
  await publishDir(tmp, dest);
  r.lessons.upsertInstalled({
    id: m.id, title: m.title, origin: r.origin, channel: m.channel, version: m.version,
    durationS: m.durationS, path: m.id, renditions: m.renditions, misses: m.misses,
  });
}
