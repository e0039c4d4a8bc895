import { YachayError } from '../errors.js';
import { backup, restore } from './backup.js';

/** `yachay backup` / `yachay restore`: the commands a technician and the nightly timer run. */
export async function backupCommand(dataDir: string, o: { to?: string | undefined; withContent: boolean; keep?: string | undefined; configFile?: string | undefined; quiet: boolean }): Promise<number> {
  if (!o.to) throw new YachayError('YCH_ERR_USAGE', 'backup needs --to DIR (an external drive, or the backup folder of the nightly timer)');
  const keep = o.keep === undefined ? undefined : Number(o.keep);
  if (keep !== undefined && !(Number.isInteger(keep) && keep >= 1)) throw new YachayError('YCH_ERR_USAGE', `--keep must be a whole number ≥ 1 (got ${o.keep})`);
  const say = o.quiet ? undefined : (what: string): void => { process.stderr.write(`copiando / copying ${what}…\n`); };
  const dir = await backup(dataDir, o.to, { withContent: o.withContent, keep, configFile: o.configFile, onProgress: say });
  process.stdout.write(`${dir}\n`);
  return 0;
}

export async function restoreCommand(dataDir: string, o: { from?: string | undefined; force: boolean; quiet: boolean }): Promise<number> {
  if (!o.from) throw new YachayError('YCH_ERR_USAGE', 'restore needs --from DIR (a backup folder, or the folder holding them: the newest is used)');
  const say = o.quiet ? undefined : (what: string): void => { process.stderr.write(`restaurando / restoring ${what}…\n`); };
  const r = await restore(o.from, dataDir, { force: o.force, onProgress: say });
  process.stdout.write(`restaurada / restored ${r.from} (${r.files} archivos / files) → ${dataDir}\n`);
  return 0;
}
