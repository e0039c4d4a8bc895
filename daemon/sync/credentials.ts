import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { YachayError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';

/**
 * Enrollment: a box exchanges the school's one-time code once for its MQTT credentials and the
 * hub's public key (POST /api/enroll, issue 9 contract). Both are kept 0600 under DIR/sync/, so
 * later starts need neither --hub nor --enroll.
 */
export interface Credentials {
  school: string;
  name?: string | undefined;
  channels: string[];
  mqtt: { url: string; username: string; password: string };
  /** where lesson bytes come from: the hub's origin (sync.origin may point at a peer box instead) */
  origin: string;
  /** the hub's HTTP base, for a later re-enrollment and its clock */
  hub: string;
  enrolledAt: number;
}

export const CREDENTIALS_FILE = 'credentials.json';

export async function loadCredentials(syncDir: string): Promise<Credentials | undefined> {
  let text: string;
  try { text = await readFile(join(syncDir, CREDENTIALS_FILE), 'utf8'); } catch { return undefined; }
  try {
    return JSON.parse(text) as Credentials;
  } catch (err) {
    throw new YachayError('YCH_ERR_CONFIG', `${join(syncDir, CREDENTIALS_FILE)} is not valid JSON: enroll the box again`, { cause: err });
  }
}

const REFUSALS: ReadonlySet<string> = new Set(['YCH_ERR_ENROLL_CODE', 'YCH_ERR_ENROLL_EXPIRED', 'YCH_ERR_ENROLL_USED', 'YCH_ERR_REVOKED']);

/** True for the hub's answers that no retry will change: `start` stops on them. */
export function isRefusal(err: unknown): boolean {
  return err instanceof YachayError && REFUSALS.has(err.code);
}

export interface EnrollOptions { hub: string; code: string; syncDir: string; hubKeyFile: string; hostname?: string; version?: string; signal?: AbortSignal }

export async function enroll(o: EnrollOptions): Promise<Credentials> {
  const base = o.hub.endsWith('/') ? o.hub : `${o.hub}/`;
  let res: Response;
  try {
    res = await fetch(new URL('api/enroll', base), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: o.code, hostname: o.hostname, version: o.version }),
      signal: o.signal ?? AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new YachayError('YCH_ERR_HUB_UNREACHABLE', `hub ${base}: ${(err as Error).message}`, { cause: err });
  }
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try { body = JSON.parse(text) as Record<string, unknown>; } catch { /* named below */ }
  if (!res.ok) {
    const code = String(body.code ?? '');
    const msg = `hub ${base} refused the enrollment code: ${String(body.message ?? `HTTP ${res.status}`)}`;
    if (REFUSALS.has(code)) throw new YachayError(code as ErrorCode, msg);
    throw new YachayError('YCH_ERR_HUB_UNREACHABLE', `hub ${base}: HTTP ${res.status} ${text.slice(0, 200)}`);
  }
  const mqtt = body.mqtt as Credentials['mqtt'] | undefined;
  if (typeof body.school !== 'string' || !mqtt?.url || !mqtt.username || typeof mqtt.password !== 'string' || typeof body.hubKey !== 'string' || typeof body.origin !== 'string') {
    throw new YachayError('YCH_ERR_HUB_UNREACHABLE', `hub ${base}: the enrollment answer lacks school, mqtt, hubKey or origin`);
  }
  const creds: Credentials = {
    school: body.school, name: typeof body.name === 'string' ? body.name : undefined,
    channels: Array.isArray(body.channels) ? body.channels.map(String) : [],
    mqtt: { url: mqtt.url, username: mqtt.username, password: mqtt.password },
    origin: body.origin, hub: base, enrolledAt: Date.now(),
  };
  await mkdir(o.syncDir, { recursive: true, mode: 0o700 });
  // the key first: credentials without the key would let a box sync what it cannot check
  await writeFileAtomic(o.hubKeyFile, body.hubKey, { mode: 0o600 });
  await writeFileAtomic(join(o.syncDir, CREDENTIALS_FILE), JSON.stringify(creds, null, 2) + '\n', { mode: 0o600 });
  return creds;
}
