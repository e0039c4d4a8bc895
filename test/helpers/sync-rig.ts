import type { Test } from 'tap';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { netnsAvailable, openSatLink, sleep } from './netns.js';
import type { LinkShape, SatLink } from './netns.js';
import { startNginx } from './origin-servers.js';
import type { Served } from './origin-servers.js';
import { originPath } from '../../daemon/pkg/origin.js';

/**
 * The rig of the link fault tests: a random blob in an origin folder served by nginx in the hub's
 * namespace, and the box's fetcher (fetch-child.ts: daemon/pkg's fetchBlob) in the box's. The
 * rate is higher than a VSAT's so each test stays under a minute; the round trip and the loss
 * are the satellite's. `npm run bench:sync` uses the real rate.
 */
const CHILD = fileURLToPath(new URL('./fetch-child.ts', import.meta.url));
export const avail = netnsAvailable();
export const WHERE = avail.ok ? 'netns, 600 ms RTT, 1% loss' : `LOOPBACK, unshaped: ${avail.why}`;
export const SHAPE: Partial<LinkShape> = { rttMs: 600, lossPct: 1, rateKbit: 8000 };
// the loopback fallback has no link to slow a transfer: the child's own cap does
export const LOOP_RATE = avail.ok ? undefined : 8000;
export const IDLE_MS = 2000;

export interface Rig { link: SatLink; origin: string; box: string; nginx: Served; blob: Buffer; sha: string; part: string; dest: string; url: string }

export async function rig(t: Test, size: number): Promise<Rig> {
  const dir = t.testdir();
  const link = await openSatLink(SHAPE);
  t.teardown(() => link.close());
  t.comment(link.describe);
  const origin = join(dir, 'hub-origin'); const box = join(dir, 'box-origin');
  const blob = randomBytes(size);
  const sha = createHash('sha256').update(blob).digest('hex');
  mkdirSync(join(origin, 'blobs', 'sha256', sha.slice(0, 2)), { recursive: true });
  writeFileSync(join(origin, originPath.blob(sha)), blob);
  const nginx = await startNginx(link, origin, join(dir, 'nginx'));
  t.teardown(() => nginx.stop());
  const dest = join(box, originPath.blob(sha));
  return { link, origin, box, nginx, blob, sha, dest, part: `${dest}.part`, url: nginx.url };
}

export interface End { event: 'end'; ok: boolean; fetched: number; bodyBytes: number; failures: number; resumed?: number; code?: string; message?: string }

export function fetchChild(r: Rig, extra: Record<string, unknown> = {}): { child: ChildProcess; end: Promise<End>; events: Array<Record<string, unknown>> } {
  const job = { origin: r.url, root: r.box, blobs: [{ sha256: r.sha, size: r.blob.length }], idleMs: IDLE_MS, retryMs: 200, rateKbps: LOOP_RATE, ...extra };
  const child = r.link.spawnIn('box', process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(job)]);
  const events: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const end = new Promise<End>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      const e = JSON.parse(l) as Record<string, unknown>;
      events.push(e);
      if (e.event === 'end') resolve(e as unknown as End);
    });
    child.once('exit', (code, sig) => setTimeout(() => reject(new Error(`fetch child exited ${code ?? sig} without an end: ${stderr.slice(-500)}`)), 200));
  });
  return { child, end, events };
}

export function partSize(r: Rig): number {
  try { return statSync(r.part).size; } catch { return 0; }
}

export async function whenPart(r: Rig, atLeast: number, ms = 40_000): Promise<number> {
  const until = Date.now() + ms;
  for (;;) {
    const n = partSize(r);
    if (n >= atLeast) return n;
    if (Date.now() > until) throw new Error(`.part stayed at ${n} bytes (waited for ${atLeast})`);
    await sleep(50);
  }
}

/** A drop long enough that the fetcher gives the connection up (idle > IDLE_MS) and resumes. */
export async function cut(r: Rig, ms: number): Promise<void> {
  if (r.link.mode === 'netns') { await r.link.drop(ms); return; }
  // loopback: no link to cut, so the origin goes away and comes back on the same port
  r.nginx.stop();
  await sleep(ms);
  r.nginx = await startNginx(r.link, r.origin, join(r.origin, '..', 'nginx'), r.nginx.port);
}


/**
 * Bytes a TCP sender has in flight when its receiver vanishes (a dropped link, a killed box):
 * a round trip of traffic plus the modem's buffer, all sent and none of it useful. Per
 * interruption, with room for the sender's overshoot; the IP/TCP headers are ~3.6% on top.
 */
export function inFlightAllowance(link: SatLink, interruptions: number): number {
  const rate = (link.shape.rateKbit * 1000) / 8;
  // BBR keeps up to twice the bandwidth-delay product in flight (its cwnd gain is 2), plus the
  // shaper's queue: all of it may be on the wire when the fetcher dies (1.5 was one packet short
  // once in CI: 3,499,448 bytes against 3,497,981 allowed)
  return interruptions * 2 * (rate * (link.shape.rttMs / 1000) + Math.max(32 * 1024, rate / 4));
}
