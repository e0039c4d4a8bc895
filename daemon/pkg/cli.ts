import { mkdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { dataPaths } from '../paths.js';
import { openDb } from '../db/db.js';
import { Lessons } from '../catalog/lessons.js';
import { YachayError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { exportLessons, importPackage } from './transfer.js';

/**
 * `yachay export ID… --to DIR` and `yachay import DIR`: lessons on a USB drive, for a school the
 * link does not reach. Both work while the box runs (SQLite WAL; the install is atomic).
 */
function progress(quiet: boolean): ((done: number, total: number) => void) | undefined {
  if (quiet || !process.stderr.isTTY) return undefined;
  let last = -1;
  return (done, total) => {
    const pct = Math.floor((done / Math.max(1, total)) * 100);
    if (pct !== last) { last = pct; process.stderr.write(`\r${pct}% `); }
  };
}

export async function exportCommand(dataDir: string, ids: string[], to: string | undefined, opts: { quiet: boolean; signal: AbortSignal }): Promise<number> {
  if (!to) throw new YachayError('YCH_ERR_USAGE', 'export needs --to DIR (a folder on the USB drive)');
  if (ids.length === 0) throw new YachayError('YCH_ERR_USAGE', 'export needs at least one lesson id');
  const paths = dataPaths(dataDir);
  const db = openDb(paths.db);
  try {
    const lessons = new Lessons(db);
    await mkdir(resolve(to), { recursive: true });
    const r = await exportLessons(ids, resolve(to), { store: paths.store, originRoot: paths.origin, lessons, signal: opts.signal, onProgress: progress(opts.quiet) });
    process.stdout.write(`exportadas ${r.lessons} lecciones / exported ${r.lessons} lessons: ${r.files} archivos nuevos, ${(r.bytes / 1e6).toFixed(1)} MB → ${resolve(to)}\n`);
    return 0;
  } finally {
    db.close();
  }
}

export async function importCommand(dataDir: string, dir: string | undefined, hubKeyFile: string | undefined, opts: { quiet: boolean; signal: AbortSignal }): Promise<number> {
  if (!dir) throw new YachayError('YCH_ERR_USAGE', 'import needs the folder written by `yachay export` (e.g. /media/usb/yachay)');
  const paths = dataPaths(dataDir);
  let publicPem: string;
  try {
    publicPem = await readFile(hubKeyFile ?? paths.hubKey, 'utf8');
  } catch {
    throw new YachayError('YCH_ERR_PACKAGE_SIGNATURE', hubKeyFile
      ? `cannot read the hub key ${hubKeyFile}`
      : `this box has no hub key (${paths.hubKey}): enroll it (\`yachay start --hub URL --enroll CODE\`) or give the hub's public key once with --hub-key FILE`);
  }
  const db = openDb(paths.db);
  try {
    const lessons = new Lessons(db);
    await mkdir(paths.store, { recursive: true });
    const ids = await importPackage(resolve(dir), publicPem, { store: paths.store, originRoot: paths.origin, lessons, signal: opts.signal, onProgress: progress(opts.quiet) });
    // a key given by a technician becomes the box's trusted key, as enrollment would have made it
    if (hubKeyFile && !(await readFile(paths.hubKey).then(() => true, () => false))) {
      await mkdir(paths.sync, { recursive: true });
      await writeFileAtomic(paths.hubKey, publicPem, { mode: 0o600 });
    }
    for (const id of ids) process.stdout.write(`${id}\n`);
    process.stderr.write(`importadas ${ids.length} lecciones / imported ${ids.length} lessons\n`);
    return 0;
  } finally {
    db.close();
  }
}
