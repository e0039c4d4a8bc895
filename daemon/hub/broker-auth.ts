import { pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { chown } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';

/**
 * Mosquitto's password_file and acl_file, rendered whole from the catalog each time (never
 * edited in place): what PostgreSQL says is what the broker enforces, whichever hub wrote last.
 */
export const HUB_USER = 'hub';

export interface BoxCredential { school: string; username: string; passwordHash: string; channels: string[] }

/** Mosquitto 2's `$7$` format: PBKDF2-SHA512, base64 salt and hash (what mosquitto_passwd writes) */
export function hashPassword(password: string, iterations = 1000): string {
  const salt = randomBytes(12);
  const hash = pbkdf2Sync(password, salt, iterations, 64, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export function checkPassword(password: string, stored: string): boolean {
  const [, kind, iter, salt, hash] = stored.split('$');
  if (kind !== '7' || !iter || !salt || !hash) return false;
  const want = Buffer.from(hash, 'base64');
  const got = pbkdf2Sync(password, Buffer.from(salt, 'base64'), Number(iter), want.length, 'sha512');
  return got.length === want.length && timingSafeEqual(got, want);
}

export function boxUser(school: string): string {
  return `box-${school}`;
}

export function renderPasswd(hubHash: string, boxes: BoxCredential[]): string {
  return [`${HUB_USER}:${hubHash}`, ...boxes.map((b) => `${b.username}:${b.passwordHash}`)].join('\n') + '\n';
}

/** The MQTT contract's ACL (common brief): a box reads its channels and its own down-topics, writes only its up-topics. */
export function renderAcl(boxes: BoxCredential[]): string {
  const out = ['# written by `yachay hub`: edits are overwritten', '', `user ${HUB_USER}`, 'topic readwrite #', ''];
  for (const b of boxes) {
    const s = b.school;
    out.push(`user ${b.username}`);
    for (const ch of b.channels) out.push(`topic read yachay/catalog/${ch}/#`);
    out.push(`topic read yachay/${s}/assign/#`, `topic read yachay/${s}/cmd/#`);
    // signed releases for every arch (issue 11 item 7); a box reports its update outcomes
    out.push('topic read yachay/release/#');
    for (const up of ['status', 'telemetry', 'sync/#', 'request/#', 'usage', 'feedback', 'update']) out.push(`topic write yachay/${s}/${up}`);
    out.push('');
  }
  return out.join('\n');
}

export interface AuthFiles { passwd: string; acl: string }

export function authFiles(dir: string): AuthFiles {
  return { passwd: join(dir, 'passwd'), acl: join(dir, 'acl') };
}

/** 0600, owned by the broker's user when we are root (Mosquitto drops to it) */
export async function writeAuthFiles(files: AuthFiles, passwd: string, acl: string, owner?: { uid: number; gid: number }): Promise<void> {
  await writeFileAtomic(files.passwd, passwd, { mode: 0o600 });
  await writeFileAtomic(files.acl, acl, { mode: 0o600 });
  if (owner) {
    await chown(files.passwd, owner.uid, owner.gid);
    await chown(files.acl, owner.uid, owner.gid);
  }
}
