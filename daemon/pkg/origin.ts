import { copyFile, link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { dirname, join } from 'node:path';
import { YachayError } from '../errors.js';
import { fsyncFile, ioError, writeFileAtomic } from '../util/atomic.js';
import { manifestBytes, sha256File } from './manifest.js';
import type { Manifest } from './manifest.js';
import { signBytes } from './sign.js';

/**
 * One layout for every origin of lessons — the hub's HTTP, nginx or a CDN, a USB drive, a peer
 * box — so each is a folder any static server can serve:
 *   manifests/<id>.json, manifests/<id>.json.sig, blobs/sha256/<ab>/<sha256>
 * A blob is named by its content: a segment two lessons (or two versions) share is stored and
 * sent once.
 */
export const originPath = {
  manifest: (id: string): string => `manifests/${id}.json`,
  signature: (id: string): string => `manifests/${id}.json.sig`,
  blob: (sha: string): string => `blobs/sha256/${sha.slice(0, 2)}/${sha}`,
} as const;

export class BlobStore {
  /** `root` is the origin folder (the one holding blobs/ and manifests/) */
  constructor(readonly root: string) {}

  path(sha: string): string {
    return join(this.root, originPath.blob(sha));
  }

  async has(sha: string): Promise<boolean> {
    try { return (await stat(this.path(sha))).isFile(); } catch { return false; }
  }

  /**
   * Adds `src` as blob `sha`: a hard link when it is on the same disk (no bytes copied), else a
   * copy; checked against `sha` before it gets its name, so the store never holds a wrong blob.
   */
  async putFile(src: string, sha: string): Promise<void> {
    if (await this.has(sha)) return;
    const dest = this.path(sha);
    const tmp = `${dest}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      await mkdir(dirname(dest), { recursive: true });
      try { await link(src, tmp); } catch { await copyFile(src, tmp); await fsyncFile(tmp); }
      const got = await sha256File(tmp);
      if (got !== sha) {
        throw new YachayError('YCH_ERR_PACKAGE_HASH', `${src}: sha256 ${got} differs from the expected ${sha}`);
      }
      await rename(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true });
      if (err instanceof YachayError) throw err;
      throw ioError(err, `storing blob ${sha.slice(0, 12)}… from ${src}`);
    }
  }

  /** every blob held, for garbage collection */
  async list(): Promise<string[]> {
    const base = join(this.root, 'blobs', 'sha256');
    const out: string[] = [];
    let dirs: string[] = [];
    try { dirs = await readdir(base); } catch { return out; }
    for (const d of dirs) {
      for (const f of await readdir(join(base, d))) if (/^[0-9a-f]{64}$/.test(f)) out.push(f);
    }
    return out;
  }
}

/**
 * Puts a published lesson folder into an origin: blobs first, then the signature and the
 * manifest, each atomic, so a reader that finds the manifest finds every blob it names.
 */
export async function publishToOrigin(originRoot: string, lessonDir: string, manifest: Manifest, privateKey: KeyObject): Promise<{ bytes: Buffer; signature: string }> {
  const blobs = new BlobStore(originRoot);
  for (const f of manifest.files) await blobs.putFile(join(lessonDir, f.path), f.sha256);
  const bytes = manifestBytes(manifest);
  const signature = signBytes(bytes, privateKey);
  await writeManifest(originRoot, manifest.id, bytes, signature);
  return { bytes, signature };
}

export async function writeManifest(originRoot: string, id: string, bytes: Buffer, signature: string): Promise<void> {
  await mkdir(join(originRoot, 'manifests'), { recursive: true });
  await writeFileAtomic(join(originRoot, originPath.signature(id)), signature + '\n');
  await writeFileAtomic(join(originRoot, originPath.manifest(id)), bytes);
}

/** Removes a lesson's manifest from an origin; its blobs go at the next collectGarbage. */
export async function removeManifest(originRoot: string, id: string): Promise<void> {
  await rm(join(originRoot, originPath.manifest(id)), { force: true });
  await rm(join(originRoot, originPath.signature(id)), { force: true });
}

/** Deletes blobs no kept manifest names; returns the bytes freed. */
export async function collectGarbage(originRoot: string, keep: ReadonlySet<string>): Promise<number> {
  const blobs = new BlobStore(originRoot);
  let freed = 0;
  for (const sha of await blobs.list()) {
    if (keep.has(sha)) continue;
    const p = blobs.path(sha);
    try { freed += (await stat(p)).size; await rm(p, { force: true }); } catch { /* gone already */ }
  }
  return freed;
}
