import { open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { YachayError } from '../errors.js';

/** The disk (or the user's quota) has no room left. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** ENOSPC and EDQUOT become one error a technician recognises; the rest stay I/O errors. */
export function ioError(err: unknown, what: string): YachayError {
  if (isDiskFull(err)) {
    return new YachayError('YCH_ERR_DISK_FULL', `disk full while ${what}`, { cause: err });
  }
  return new YachayError('YCH_ERR_IO', `${what} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

/** temp file → fsync → rename → fsync the folder: after a power cut the file is old or new, never half. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { mode?: number } = {}): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    // the mode is set at creation: a secret is never readable by others, not even for a moment
    await rm(tmp, { force: true });
    const fh = await open(tmp, 'w', opts.mode ?? 0o666);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    await fsyncFile(dirname(path));
  } catch (err) {
    await rm(tmp, { force: true });
    throw ioError(err, `writing ${path}`);
  }
}

/** fsync every file and folder below `dir` (ffmpeg does not), deepest first. */
export async function fsyncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(p);
    else if (entry.isFile()) await fsyncFile(p);
  }
  await fsyncFile(dir);
}

/**
 * Moves a finished package from its temp folder into place in one rename. A previous package
 * at `dest` is swapped out (renamed aside, then deleted) so a reader sees the old one or the
 * new one, never a mix.
 */
export async function publishDir(tmp: string, dest: string): Promise<void> {
  try {
    await fsyncTree(tmp);
    let old: string | undefined;
    if (await exists(dest)) {
      old = `${dest}.old-${process.pid}-${Date.now()}`;
      await rename(dest, old);
    }
    await rename(tmp, dest);
    await fsyncFile(dirname(dest));
    if (old) await rm(old, { recursive: true, force: true });
  } catch (err) {
    throw ioError(err, `publishing ${dest}`);
  }
}

export async function exists(path: string): Promise<boolean> {
  try { await stat(path); return true; } catch { return false; }
}
