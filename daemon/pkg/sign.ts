import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { link, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { YachayError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic.js';
import { parseManifest } from './manifest.js';
import type { Manifest } from './manifest.js';

/**
 * The hub signs each manifest with Ed25519 (node:crypto, no library); a box holds only the
 * public key it received at enrollment. The private key never leaves the hub's data dir.
 */
export const HUB_KEY = 'hub-ed25519.pem';
export const HUB_PUBLIC_KEY = 'hub-ed25519.pub.pem';

export async function loadOrCreateHubKey(dir: string): Promise<{ privateKey: KeyObject; publicPem: string }> {
  const file = join(dir, HUB_KEY);
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await mkdir(dir, { recursive: true });
    const { privateKey } = generateKeyPairSync('ed25519');
    const mine = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    // two hubs starting together on one empty volume must end with one key: the file is made
    // complete under a temp name and linked into place, which fails if another got there first
    const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
    await writeFileAtomic(tmp, mine, { mode: 0o600 });
    try {
      await link(tmp, file);
      pem = mine;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      pem = await readFile(file, 'utf8');
    } finally {
      await rm(tmp, { force: true });
    }
  }
  const privateKey = createPrivateKey(pem);
  const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }) as string;
  await writeFileAtomic(join(dir, HUB_PUBLIC_KEY), publicPem);
  return { privateKey, publicPem };
}

export function signBytes(bytes: Buffer, privateKey: KeyObject): string {
  return sign(null, bytes, privateKey).toString('base64');
}

/** The signature first, then the content: nothing in an unsigned manifest is even parsed. */
export function verifyManifest(bytes: Buffer, sigB64: string | undefined, publicPem: string, where: string): Manifest {
  const sig = (sigB64 ?? '').trim();
  if (!sig) throw new YachayError('YCH_ERR_PACKAGE_SIGNATURE', `${where}: the manifest has no signature`);
  let ok = false;
  try {
    ok = verify(null, bytes, createPublicKey(publicPem), Buffer.from(sig, 'base64'));
  } catch (err) {
    throw new YachayError('YCH_ERR_PACKAGE_SIGNATURE', `${where}: the signature cannot be read (${(err as Error).message})`, { cause: err });
  }
  if (!ok) throw new YachayError('YCH_ERR_PACKAGE_SIGNATURE', `${where}: the signature does not match the manifest (altered, or signed by another hub)`);
  return parseManifest(bytes, where);
}
