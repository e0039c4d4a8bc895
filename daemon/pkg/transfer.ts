import { copyFile, mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { YachayError } from '../errors.js';
import { fsyncFile, ioError } from '../util/atomic.js';
import type { Lessons } from '../catalog/lessons.js';
import { parseManifest, sha256File } from './manifest.js';
import type { Manifest } from './manifest.js';
import { BlobStore, originPath, writeManifest } from './origin.js';
import { verifyManifest } from './sign.js';
import { installLesson } from './install.js';

/**
 * Sneakernet: a school with no link gets lessons on a USB drive. The drive holds the same origin
 * layout as the hub (manifests + blobs), so `import` checks exactly what a sync checks: the hub's
 * signature, then every file's sha256, all before anything is installed.
 */

export interface TransferDeps {
  store: string;
  /** the box's origin folder: DIR/origin */
  originRoot: string;
  lessons: Lessons;
  signal?: AbortSignal | undefined;
  onProgress?: ((done: number, total: number, what: string) => void) | undefined;
}

async function readSigned(root: string, id: string, where: string): Promise<{ bytes: Buffer; signature: string }> {
  try {
    const bytes = await readFile(join(root, originPath.manifest(id)));
    let signature = '';
    try { signature = (await readFile(join(root, originPath.signature(id)), 'utf8')).trim(); } catch { /* unsigned: the check names it */ }
    return { bytes, signature };
  } catch (err) {
    throw new YachayError('YCH_ERR_PACKAGE_INVALID', `${where}: ${(err as Error).message}`, { cause: err });
  }
}

async function copyAtomic(src: string, dest: string): Promise<void> {
  const tmp = `${dest}.tmp-${process.pid}`;
  await mkdir(dirname(dest), { recursive: true });
  await copyFile(src, tmp);
  await fsyncFile(tmp);
  await rename(tmp, dest);
}

/** Writes lessons this box holds as signed packages into `toDir`; a blob already there is kept. */
export async function exportLessons(ids: string[], toDir: string, d: TransferDeps): Promise<{ lessons: number; bytes: number; files: number }> {
  const blobs = new BlobStore(d.originRoot);
  const plan: Array<{ id: string; bytes: Buffer; signature: string; manifest: Manifest }> = [];
  for (const id of ids) {
    const lesson = d.lessons.get(id);
    if (!lesson) throw new YachayError('YCH_ERR_USAGE', `no lesson "${id}" on this box (see /api/lessons)`);
    if (lesson.origin === 'local') {
      throw new YachayError('YCH_ERR_USAGE', `lesson "${id}" was made on this box and has no hub signature: only lessons from the hub travel by USB (add it at the hub with \`yachay hub add\`)`);
    }
    const where = join(d.originRoot, originPath.manifest(id));
    const { bytes, signature } = await readSigned(d.originRoot, id, where);
    plan.push({ id, bytes, signature, manifest: parseManifest(bytes, where) });
  }
  const total = plan.reduce((n, p) => n + p.manifest.files.length, 0);
  let done = 0; let bytes = 0; let files = 0;
  try {
    for (const p of plan) {
      for (const f of p.manifest.files) {
        d.signal?.throwIfAborted();
        const dest = join(toDir, originPath.blob(f.sha256));
        const there = await stat(dest).then((s) => s.size === f.size, () => false);
        if (!there) { await copyAtomic(blobs.path(f.sha256), dest); bytes += f.size; files++; }
        d.onProgress?.(++done, total, f.path);
      }
      // the manifest last: a drive pulled out early holds no lesson that looks complete
      await writeManifest(toDir, p.id, p.bytes, p.signature);
    }
  } catch (err) {
    if (err instanceof YachayError || d.signal?.aborted) throw err;
    throw ioError(err, `exporting to ${toDir}`);
  }
  return { lessons: plan.length, bytes, files };
}

/**
 * Checks every manifest's signature and every file's hash on the drive, and only then installs.
 * One bad file rejects the whole import: a technician re-copies the drive, the box is unchanged.
 */
export async function importPackage(dir: string, publicPem: string, d: TransferDeps): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(join(dir, 'manifests'))).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    throw new YachayError('YCH_ERR_PACKAGE_INVALID', `${dir}: no manifests/ folder (is this a drive written by \`yachay export\`?)`, { cause: err });
  }
  if (names.length === 0) throw new YachayError('YCH_ERR_PACKAGE_INVALID', `${join(dir, 'manifests')}: no lesson manifest`);
  const checked: Array<{ manifest: Manifest; bytes: Buffer; signature: string }> = [];
  for (const name of names) {
    const id = name.slice(0, -'.json'.length);
    const where = join(dir, 'manifests', name);
    const { bytes, signature } = await readSigned(dir, id, where);
    const manifest = verifyManifest(bytes, signature, publicPem, where);
    if (manifest.id !== id) throw new YachayError('YCH_ERR_PACKAGE_INVALID', `${where}: names lesson ${manifest.id}`);
    checked.push({ manifest, bytes, signature });
  }
  const total = checked.reduce((n, c) => n + c.manifest.files.length, 0);
  let done = 0;
  const blobs = new BlobStore(d.originRoot);
  // blobs are checked on their way into the box's store (BlobStore.putFile hashes the copy), so
  // a file altered on the drive after this check cannot slip in either
  const added: string[] = [];
  try {
    for (const c of checked) {
      for (const f of c.manifest.files) {
        d.signal?.throwIfAborted();
        const src = join(dir, originPath.blob(f.sha256));
        if (!(await blobs.has(f.sha256))) {
          const size = await stat(src).then((s) => s.size, () => -1);
          if (size < 0) throw new YachayError('YCH_ERR_PACKAGE_INVALID', `${src}: missing (file ${f.path} of lesson ${c.manifest.id})`);
          try {
            await blobs.putFile(src, f.sha256);
          } catch (err) {
            if (err instanceof YachayError && err.code === 'YCH_ERR_PACKAGE_HASH') {
              throw new YachayError('YCH_ERR_PACKAGE_HASH', `${src}: file ${f.path} of lesson ${c.manifest.id} differs from its signed manifest (damaged or altered)`, { cause: err });
            }
            throw err;
          }
          added.push(f.sha256);
        }
        d.onProgress?.(++done, total, f.path);
      }
    }
  } catch (err) {
    // nothing half-imported stays: blobs this import added are removed again
    for (const sha of added) await rm(blobs.path(sha), { force: true });
    throw err;
  }
  const installed: string[] = [];
  for (const c of checked) {
    const have = d.lessons.get(c.manifest.id);
    if (have && have.origin !== 'local' && (have.version ?? 0) > c.manifest.version && have.status === 'ready') continue;
    await installLesson({
      store: d.store, blobs, manifest: c.manifest, manifestBytes: c.bytes, signature: c.signature,
      lessons: d.lessons, origin: 'import', signal: d.signal,
    });
    installed.push(c.manifest.id);
  }
  return installed;
}
