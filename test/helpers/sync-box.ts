import type { Test } from 'tap';
import { pino } from 'pino';
import { loadConfig } from '../../daemon/config/load.js';
import { buildEdge } from '../../daemon/edge.js';
import type { Edge } from '../../daemon/edge.js';
import { localClock } from '../../daemon/sync/window.js';
import type { FakeHub } from './sync-hub.js';

/** A whole box (buildEdge: SQLite, Aedes, worker, HTTP, sync) for the sync tests. */
const log = pino({ level: 'silent' });
export const S = 'escuela-1';

/** a window that is closed now and for the next hours: only runOnce() syncs */
export function closedWindow(): string {
  const m = localClock(Date.now(), 'America/Lima').minute;
  const hh = (x: number): string => `${String(Math.floor(((x + 1440) % 1440) / 60)).padStart(2, '0')}:${String(((x + 1440) % 1440) % 60).padStart(2, '0')}`;
  return `${hh(m + 180)}-${hh(m + 240)}`;
}

export interface BoxOpts { code?: string; window?: string; quotaBytes?: number; origin?: string; hub?: string }

export async function startBox(t: Test, dir: string, hub: FakeHub | undefined, o: BoxOpts = {}): Promise<Edge> {
  const cfg = loadConfig({
    env: {},
    overrides: {
      dataDir: dir, log: { level: 'silent' }, school: S,
      http: { host: '127.0.0.1', port: 0 }, mqtt: { host: '127.0.0.1', port: 0, wsPort: 0 },
      optimize: { models: { vad: false, face: false, rate: false } },
      sync: { hub: o.hub ?? hub?.httpUrl ?? '', window: o.window ?? 'always', rateKbps: 200_000, quotaBytes: o.quotaBytes ?? 0, origin: o.origin ?? '' },
    },
  });
  const edge = await buildEdge(cfg, log, { enrollCode: o.code });
  await edge.app.start();
  t.teardown(() => edge.app.stop('test end'));
  return edge;
}

export async function api(edge: Edge, path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(edge.http.url + path, init);
  const text = await res.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* text */ }
  return { status: res.status, body };
}

