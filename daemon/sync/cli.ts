import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { YachayError } from '../errors.js';
import { dataPaths } from '../paths.js';

/**
 * `yachay sync now`: tells the running box (its local HTTP API) to sync outside the window. The
 * box writes its URL and a per-run secret to DIR/sync/control.json (0600) when it starts, so only
 * someone who may read the data dir can trigger it; no admin password on the command line.
 */
export async function syncCommand(cfg: Config, args: string[]): Promise<number> {
  if (args[0] !== 'now' || args.length !== 1) throw new YachayError('YCH_ERR_USAGE', 'usage: yachay sync now');
  const file = join(dataPaths(cfg.dataDir).sync, 'control.json');
  let control: { url: string; token: string };
  try {
    control = JSON.parse(await readFile(file, 'utf8')) as { url: string; token: string };
  } catch {
    throw new YachayError('YCH_ERR_USAGE', `no running box found (${file}): start it with \`yachay start\` (same --data-dir)`);
  }
  let res: Response;
  try {
    res = await fetch(new URL('/api/sync/now', control.url), { method: 'POST', headers: { 'x-yachay-control': control.token }, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new YachayError('YCH_ERR_USAGE', `the box at ${control.url} does not answer (${(err as Error).message}): is \`yachay start\` running?`);
  }
  const body = await res.text();
  if (res.status !== 202) throw new YachayError('YCH_ERR_USAGE', `the box refused: HTTP ${res.status} ${body.slice(0, 300)}`);
  const s = JSON.parse(body) as { state: string; queue: unknown[] };
  process.stdout.write(`sincronizando / syncing: ${s.queue.length} lección(es) / lesson(s) en cola / queued (estado / state: ${s.state})\n`);
  return 0;
}
