import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { switchCurrent } from './releases.js';
import { addReport, clearPending, readPending, refuseVersion, updateDir } from './state.js';

/**
 * The judge of a new release is never the new release itself (issue 11 item 7). Design:
 *
 * - The OLD release, having unpacked and checked the new one, writes `update/pending.json`
 *   (from, to, deadline) durably, switches `current`, starts this guard from its OWN folder
 *   (`node releases/<from>/bin/yachay.mjs update-guard`, detached, own session) and exits 75 so
 *   the supervisor (systemd Restart=, the test's restart loop) starts `current`, now the new one.
 * - The guard polls the box's /health until the deadline. It counts the new release as good
 *   only when /health answers 200, ok, and names the new version: a port answered by anything
 *   else, or a release that starts but never gets all its services up, is not good.
 * - A good new release removes pending.json itself and reports "updated" over its own bridge.
 *   If the deadline passes with pending.json still there, the guard records "rolled-back" (a
 *   report file the old release sends once it runs again, and the version in refused.json so it
 *   is not installed again), switches `current` back, removes pending.json and stops the box's
 *   process (pid from sync/control.json, checked to be a `yachay … start`), so the supervisor
 *   starts the old release.
 *
 * Why this shape: a release that cannot start at all, or starts and serves nothing, can judge
 * nothing; the guard is code that already ran well on this box. Everything it needs is in
 * files, so a second guard (after a reboot, or systemd's own) can take over from the record.
 * Under systemd a detached child still lives in the unit's cgroup and dies with the restart;
 * there the same command must run from a unit of its own (yachay-update-guard.path watching
 * pending.json, ExecStart=<root>/previous/…): the README says so, the guard is the same code.
 */
export interface GuardOptions {
  dataDir: string;
  log: Logger;
  pollMs?: number;
  /** how long the box may take to stop on SIGUSR2 before SIGKILL */
  stopGraceMs?: number;
  /** after a good /health, how long to wait for the new release to clear the record */
  clearWaitMs?: number;
}

export type GuardResult = 'nothing' | 'healthy' | 'rolled-back' | 'busy';

async function probe(url: string): Promise<{ ok: boolean; version?: string; status?: number; error?: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    const body = await res.json().catch(() => ({})) as { ok?: boolean; version?: string };
    return { ok: res.status === 200 && body.ok === true, version: body.version, status: res.status };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/** one guard at a time: the lock names its pid; a lock whose pid is gone is taken over */
async function lock(dataDir: string): Promise<(() => Promise<void>) | undefined> {
  const file = join(updateDir(dataDir), 'guard.lock');
  for (let i = 0; i < 2; i++) {
    try {
      const fh = await open(file, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(file, { force: true });
    } catch {
      const pid = Number(await readFile(file, 'utf8').catch(() => '0'));
      if (pid && pid !== process.pid && alive(pid)) return undefined;
      await rm(file, { force: true });
    }
  }
  return undefined;
}

/**
 * Stops the running box (its pid from sync/control.json, if that process is `yachay … start`)
 * with SIGUSR2: the box stops in order and exits 75, which systemd restarts under Restart=always
 * and Restart=on-failure alike (a SIGTERM stop exits 0, which on-failure would leave down).
 */
async function stopBox(dataDir: string, graceMs: number, log: Logger): Promise<void> {
  let pid = 0;
  try { pid = (JSON.parse(await readFile(join(dataDir, 'sync', 'control.json'), 'utf8')) as { pid: number }).pid; } catch { /* none */ }
  if (!pid || !alive(pid)) { log.info('no running box to stop: the supervisor starts the old release at its next start'); return; }
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
  if (!argv.some((a) => a.endsWith('yachay.mjs')) || !argv.includes('start')) { log.warn({ pid }, 'control.json names a process that is not the box: not stopped'); return; }
  process.kill(pid, 'SIGUSR2');
  const until = Date.now() + graceMs;
  while (alive(pid) && Date.now() < until) await sleep(200);
  if (alive(pid)) { log.warn({ pid }, 'the box did not stop on SIGUSR2: killed'); process.kill(pid, 'SIGKILL'); }
}

export async function runGuard(o: GuardOptions): Promise<GuardResult> {
  const { dataDir, log } = o;
  const first = await readPending(dataDir);
  if (!first) return 'nothing';
  const unlock = await lock(dataDir);
  if (!unlock) return 'busy';
  try {
    let last: Awaited<ReturnType<typeof probe>> = { ok: false, error: 'not asked yet' };
    while (Date.now() < first.deadline) {
      const p = await readPending(dataDir);
      if (!p || p.to !== first.to) return 'healthy';
      last = await probe(first.healthUrl);
      if (last.ok && last.version === first.to) {
        log.info({ to: first.to }, 'the new release answers /health: good');
        // it clears the record itself within a second or two; a systemd path unit watching the
        // record would start this guard again meanwhile, so wait for it (bounded)
        const until = Date.now() + (o.clearWaitMs ?? 30_000);
        while (Date.now() < until && (await readPending(dataDir))?.to === first.to) await sleep(250);
        return 'healthy';
      }
      await sleep(o.pollMs ?? 1000);
    }
    const p = await readPending(dataDir);
    if (!p || p.to !== first.to) return 'healthy';
    const seconds = Math.round((first.deadline - first.startedAt) / 1000);
    const reason = `no good /health from ${first.to} within ${seconds} s (last: ${last.error ?? `HTTP ${last.status}, ok ${last.ok}, version ${last.version ?? 'none'}`})`;
    log.error({ from: first.from, to: first.to, reason }, 'rolling back');
    // the report and the refusal first: a power cut after them still ends in the old release
    await addReport(dataDir, { outcome: 'rolled-back', from: first.from, to: first.to, at: Date.now(), reason });
    await refuseVersion(dataDir, first.to);
    await switchCurrent(first.root, first.from);
    await clearPending(dataDir);
    await stopBox(dataDir, o.stopGraceMs ?? 45_000, log);
    return 'rolled-back';
  } finally {
    await unlock();
  }
}
