import { lstat, mkdir, readFile, readlink, rename, rm, stat, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { YachayError } from '../errors.js';
import { fsyncFile, ioError } from '../util/atomic.js';
import { ToolFailure, run } from '../media/run.js';

/**
 * The releases on a box (contract with provisioning, issue 11 item 7):
 *   <root>/releases/<version>/   one unpacked bundle each (bin/, daemon/, VERSION, …)
 *   <root>/current → releases/<version>   what systemd starts
 * A release appears whole or not at all (unpacked under a temp name, checked, renamed), and
 * `current` is switched by renaming a fresh link over it: a power cut leaves the old link or
 * the new one, never none.
 */
export function releasePath(root: string, version: string): string { return join(root, 'releases', version); }

/** the version `current` points at, or undefined */
export async function currentVersion(root: string): Promise<string | undefined> {
  try { return basename(await readlink(join(root, 'current'))); } catch { return undefined; }
}

export function switchCurrent(root: string, version: string): Promise<void> {
  return pointLink(root, 'current', version);
}

/** `<root>/<name>` → releases/<version>; also `previous`, which a systemd guard unit starts from */
export async function pointLink(root: string, name: 'current' | 'previous', version: string): Promise<void> {
  const target = join('releases', version);
  const link = join(root, name);
  const tmp = `${link}.tmp-${process.pid}`;
  try {
    if (!(await stat(join(root, target, 'bin', 'yachay.mjs')).then((s) => s.isFile(), () => false))) {
      throw new YachayError('YCH_ERR_UPDATE_BUNDLE', `${join(root, target)} has no bin/yachay.mjs: ${name} not switched`);
    }
    await rm(tmp, { force: true });
    // relative: the whole root can be moved or mounted elsewhere (a chroot, a backup)
    await symlink(target, tmp);
    await rename(tmp, link);
    await fsyncFile(root);
  } catch (err) {
    await rm(tmp, { force: true });
    if (err instanceof YachayError) throw err;
    throw ioError(err, `switching ${link} to ${target}`);
  }
}

/**
 * Unpacks a checked bundle into `<root>/releases/<version>`: tar (through the one process
 * runner) into a temp folder on the same disk, the layout and VERSION checked, then one rename.
 * A bundle that is not `yachay-<version>/` with bin/yachay.mjs, daemon/ and VERSION saying
 * `version` is refused and its temp folder removed.
 */
export async function unpackRelease(bundle: string, root: string, version: string, signal?: AbortSignal): Promise<string> {
  const releases = join(root, 'releases');
  const tmp = join(releases, `.incoming-${version}-${process.pid}`);
  const dest = releasePath(root, version);
  try {
    await mkdir(releases, { recursive: true });
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp);
  } catch (err) { throw ioError(err, `preparing ${tmp}`); }
  try {
    try {
      // no owners or modes from the archive: files belong to the box's user, as umask says
      await run('tar', ['-xzf', bundle, '-C', tmp, '--no-same-owner', '--no-same-permissions', '--no-overwrite-dir'], { signal });
    } catch (err) {
      if (err instanceof ToolFailure) throw new YachayError('YCH_ERR_UPDATE_BUNDLE', `${basename(bundle)}: tar could not unpack it: ${err.stderr.trim().split('\n').slice(-2).join(' | ')}`, { cause: err });
      throw err;
    }
    const top = join(tmp, `yachay-${version}`);
    const want = ['bin/yachay.mjs', 'daemon/main.ts', 'package.json', 'VERSION'];
    for (const f of want) {
      if (!(await lstat(join(top, f)).then(() => true, () => false))) {
        throw new YachayError('YCH_ERR_UPDATE_BUNDLE', `${basename(bundle)}: no yachay-${version}/${f} inside (a bundle holds one folder yachay-<version>/)`);
      }
    }
    const stamped = (await readFile(join(top, 'VERSION'), 'utf8')).trim();
    if (stamped !== version) throw new YachayError('YCH_ERR_UPDATE_BUNDLE', `${basename(bundle)}: VERSION says ${stamped}, the signed manifest ${version}`);
    // a folder left by an earlier try (unpacked, never switched to) is replaced, not trusted
    if (await stat(dest).then(() => true, () => false)) {
      const old = join(releases, `.old-${version}-${process.pid}`);
      await rename(dest, old);
      await rm(old, { recursive: true, force: true });
    }
    await rename(top, dest);
    await fsyncFile(dirname(dest));
    return dest;
  } catch (err) {
    if (err instanceof YachayError) throw err;
    throw ioError(err, `unpacking ${basename(bundle)} into ${dest}`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
