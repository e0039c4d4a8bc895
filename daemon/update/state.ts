import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';

/**
 * What an update leaves on disk for whoever runs next (the new release, the guard, the old
 * release after a rollback), all under `<data>/update/`, each file written atomically:
 *   pending.json   the switch in progress: from, to, deadline (written before `current` moves)
 *   refused.json   versions that were rolled back: never installed again on this box
 *   reports/*.json outcomes not yet handed to the outbox (the guard has no MQTT of its own)
 */
export interface PendingUpdate {
  from: string;
  to: string;
  /** epoch ms: the new release must answer /health good before this, or it is rolled back */
  deadline: number;
  startedAt: number;
  root: string;
  /** the box's own /health, where the guard looks */
  healthUrl: string;
}

export type UpdateOutcome = 'switching' | 'updated' | 'rolled-back' | 'refused';

export interface UpdateReport {
  outcome: UpdateOutcome;
  from: string;
  to: string;
  at: number;
  code?: string | undefined;
  reason?: string | undefined;
}

export function updateDir(dataDir: string): string { return join(dataDir, 'update'); }

async function readJson<T>(file: string): Promise<T | undefined> {
  try { return JSON.parse(await readFile(file, 'utf8')) as T; } catch { return undefined; }
}

export async function readPending(dataDir: string): Promise<PendingUpdate | undefined> {
  const p = await readJson<PendingUpdate>(join(updateDir(dataDir), 'pending.json'));
  return p && typeof p.to === 'string' && typeof p.from === 'string' && typeof p.deadline === 'number' ? p : undefined;
}

export async function writePending(dataDir: string, p: PendingUpdate): Promise<void> {
  await mkdir(updateDir(dataDir), { recursive: true });
  await writeFileAtomic(join(updateDir(dataDir), 'pending.json'), JSON.stringify(p, null, 1) + '\n');
}

export async function clearPending(dataDir: string): Promise<void> {
  await rm(join(updateDir(dataDir), 'pending.json'), { force: true });
}

export async function refusedVersions(dataDir: string): Promise<Set<string>> {
  return new Set(await readJson<string[]>(join(updateDir(dataDir), 'refused.json')) ?? []);
}

export async function refuseVersion(dataDir: string, version: string): Promise<void> {
  const all = await refusedVersions(dataDir);
  all.add(version);
  await mkdir(updateDir(dataDir), { recursive: true });
  await writeFileAtomic(join(updateDir(dataDir), 'refused.json'), JSON.stringify([...all]) + '\n');
}

export async function addReport(dataDir: string, r: UpdateReport): Promise<void> {
  const dir = join(updateDir(dataDir), 'reports');
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, `${r.at}-${process.pid}-${r.outcome}.json`), JSON.stringify(r) + '\n');
}

/** Hands every stored report to `send` (oldest first) and deletes it once sent. */
export async function flushReports(dataDir: string, send: (r: UpdateReport) => void): Promise<number> {
  const dir = join(updateDir(dataDir), 'reports');
  let names: string[] = [];
  try { names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort(); } catch { return 0; }
  let n = 0;
  for (const name of names) {
    const r = await readJson<UpdateReport>(join(dir, name));
    if (r) { send(r); n++; }
    await rm(join(dir, name), { force: true });
  }
  return n;
}
