import Database from 'better-sqlite3';
import { cp, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { YachayError } from '../errors.js';
import { dataPaths } from '../paths.js';
import { fsyncTree, ioError } from '../util/atomic.js';
import { openDb } from '../db/db.js';
import { sha256File } from '../pkg/manifest.js';

/**
 * A box's state in one folder a technician can carry away: the database (users with their
 * password hashes, lessons, jobs, the model registry, sync state) copied with SQLite's online
 * backup while the box runs, the enrollment (credentials, the hub's key), the box's own model
 * files and the config. Lessons from the hub are re-synced, so they are left out unless asked
 * (--with-content adds the published lessons, the origin blobs and the teachers' recordings).
 *
 *   <to>/yachay-backup-2026-12-03T02-00-00Z/{yachay.db, sync/, models/, config.json, content/…, backup.json}
 *
 * The folder is written under a temp name and renamed when complete, with backup.json (every
 * file's size and sha256) last: a backup cut short by a power cut is never mistaken for one.
 */
export const BACKUP_PREFIX = 'yachay-backup-';

export interface BackupOptions {
  withContent?: boolean;
  /** the config file the box runs with, copied as config.json */
  configFile?: string | undefined;
  /** keep this many backups in `to`, deleting the oldest (nightly rotation) */
  keep?: number | undefined;
  now?: Date;
  onProgress?: ((what: string) => void) | undefined;
}

export interface BackupInfo { format: 'yachay-backup/1'; createdAt: string; withContent: boolean; files: Array<{ path: string; size: number; sha256: string }> }

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

async function listFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...await listFiles(root, p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

export async function backup(dataDir: string, to: string, o: BackupOptions = {}): Promise<string> {
  const paths = dataPaths(dataDir);
  if (!(await exists(paths.db))) throw new YachayError('YCH_ERR_INPUT_MISSING', `no box in ${paths.root} (no ${paths.db})`);
  const stamp = (o.now ?? new Date()).toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
  const final = join(resolve(to), `${BACKUP_PREFIX}${stamp}`);
  const tmp = `${final}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    o.onProgress?.('database');
    // the online backup copies a consistent snapshot page by page while the box keeps writing
    const src = new Database(paths.db, { readonly: true, fileMustExist: true });
    try { await src.backup(join(tmp, 'yachay.db')); } finally { src.close(); }
    for (const [from, name] of [[paths.sync, 'sync'], [join(paths.root, 'models'), 'models']] as const) {
      if (await exists(from)) { o.onProgress?.(name); await cp(from, join(tmp, name), { recursive: true, preserveTimestamps: true }); }
    }
    if (o.configFile) await cp(o.configFile, join(tmp, 'config.json'));
    if (o.withContent) {
      for (const [from, name] of [[paths.store, 'store'], [paths.origin, 'origin'], [paths.sources, 'sources']] as const) {
        if (await exists(from)) { o.onProgress?.(name); await cp(from, join(tmp, 'content', name), { recursive: true, preserveTimestamps: true }); }
      }
    }
    const files: BackupInfo['files'] = [];
    for (const path of (await listFiles(tmp)).sort()) {
      files.push({ path, size: (await stat(join(tmp, path))).size, sha256: await sha256File(join(tmp, path)) });
    }
    const info: BackupInfo = { format: 'yachay-backup/1', createdAt: (o.now ?? new Date()).toISOString(), withContent: Boolean(o.withContent), files };
    await writeFile(join(tmp, 'backup.json'), JSON.stringify(info, null, 1) + '\n');
    await fsyncTree(tmp);
    await rename(tmp, final);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (err instanceof YachayError) throw err;
    throw ioError(err, `backing up ${paths.root} to ${to}`);
  }
  if (o.keep !== undefined) await rotate(to, o.keep);
  return final;
}

/** Deletes all but the newest `keep` complete backups in `dir` (names sort by time). */
export async function rotate(dir: string, keep: number): Promise<string[]> {
  const all = (await readdir(dir)).filter((n) => n.startsWith(BACKUP_PREFIX) && !n.includes('.tmp-')).sort();
  const gone = all.slice(0, Math.max(0, all.length - keep));
  for (const n of gone) await rm(join(dir, n), { recursive: true, force: true });
  return gone;
}

/** `from` is one backup folder, or a folder of them (the newest is used). */
async function pick(from: string): Promise<string> {
  if (await exists(join(from, 'backup.json'))) return from;
  const all = (await readdir(from).catch(() => [] as string[])).filter((n) => n.startsWith(BACKUP_PREFIX) && !n.includes('.tmp-')).sort();
  if (!all.length) throw new YachayError('YCH_ERR_INPUT_MISSING', `${from}: no Yachay backup here (a folder named ${BACKUP_PREFIX}… with backup.json)`);
  return join(from, all[all.length - 1]!);
}

/**
 * Puts a backup into a data folder that has no box yet (or, with force, replaces one that is
 * stopped). Every file is checked against backup.json first: a damaged backup restores nothing.
 */
export async function restore(from: string, dataDir: string, o: { force?: boolean; onProgress?: (what: string) => void } = {}): Promise<{ from: string; files: number }> {
  const dir = await pick(resolve(from));
  let info: BackupInfo;
  try { info = JSON.parse(await readFile(join(dir, 'backup.json'), 'utf8')) as BackupInfo; } catch (err) {
    throw new YachayError('YCH_ERR_INPUT_CORRUPT', `${dir}/backup.json cannot be read: ${(err as Error).message}`, { cause: err });
  }
  for (const f of info.files) {
    const p = join(dir, f.path);
    const size = await stat(p).then((s) => s.size, () => -1);
    if (size !== f.size || (await sha256File(p)) !== f.sha256) {
      throw new YachayError('YCH_ERR_INPUT_CORRUPT', `${p} is ${size < 0 ? 'missing' : 'damaged'} (differs from backup.json): use another backup`);
    }
  }
  const paths = dataPaths(dataDir);
  if ((await exists(paths.db)) && !o.force) {
    throw new YachayError('YCH_ERR_OUTPUT_EXISTS', `${paths.root} already holds a box: stop it and restore with --force, or restore into an empty folder`);
  }
  await mkdir(paths.root, { recursive: true });
  o.onProgress?.('database');
  // the database is checked (integrity, migrations) from the backup before it takes the place of anything
  openDb(join(dir, 'yachay.db')).close();
  for (const suffix of ['-wal', '-shm']) await rm(paths.db + suffix, { force: true });
  const tmpDb = `${paths.db}.restore-${process.pid}`;
  await cp(join(dir, 'yachay.db'), tmpDb);
  await rename(tmpDb, paths.db);
  for (const [name, to] of [['sync', paths.sync], ['models', join(paths.root, 'models')], ['content/store', paths.store], ['content/origin', paths.origin], ['content/sources', paths.sources]] as const) {
    if (!(await exists(join(dir, name)))) continue;
    o.onProgress?.(name);
    await rm(to, { recursive: true, force: true });
    await cp(join(dir, name), to, { recursive: true, preserveTimestamps: true });
  }
  await fsyncTree(paths.root);
  return { from: dir, files: info.files.length };
}
