import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';

/**
 * Generated once per hub data dir and kept 0600: the private PostgreSQL cluster's password and
 * the hub's own MQTT password (user `hub`). Never printed, never in a log.
 */
export interface HubSecrets { pgPassword: string; mqttPassword: string }

export function randomSecret(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

export async function loadOrCreateSecrets(dataDir: string): Promise<HubSecrets> {
  const file = join(dataDir, 'secrets.json');
  try {
    const s = JSON.parse(await readFile(file, 'utf8')) as Partial<HubSecrets>;
    if (typeof s.pgPassword === 'string' && typeof s.mqttPassword === 'string') return s as HubSecrets;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
  }
  const s: HubSecrets = { pgPassword: randomSecret(), mqttPassword: randomSecret() };
  await writeFileAtomic(file, JSON.stringify(s) + '\n', { mode: 0o600 });
  return s;
}
