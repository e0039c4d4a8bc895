import { createPublicKey, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { YachayError } from '../errors.js';
import { signBytes } from '../pkg/sign.js';
import { VERSION_RE } from './version.js';

/**
 * A release as the hub announces it: the bundle's version, arch, size and sha256, signed with
 * the same Ed25519 key as the lessons (the box got its public half at enrollment). The retained
 * MQTT message carries the manifest's exact bytes and the signature, so nothing is re-serialised
 * between signing and checking; the bundle itself is a content-addressed blob of the origin.
 */
export const RELEASE_FORMAT = 'yachay-release/1';

export interface ReleaseManifest {
  format: typeof RELEASE_FORMAT;
  version: string;
  arch: string;
  sha256: string;
  size: number;
  /** the bundle's file name, for people reading the fleet view */
  name: string;
  publishedAt: string;
}

/** the retained message on yachay/release/<arch> */
export interface ReleaseOffer { manifest: string; signature: string }

export function releaseTopic(arch: string): string { return `yachay/release/${arch}`; }

export function signRelease(m: ReleaseManifest, key: KeyObject): ReleaseOffer {
  const bytes = Buffer.from(JSON.stringify(m));
  return { manifest: bytes.toString('utf8'), signature: signBytes(bytes, key) };
}

function refused(where: string, what: string): YachayError {
  return new YachayError('YCH_ERR_UPDATE_SIGNATURE', `${where}: ${what}`);
}

/** The signature first; only a manifest proven to be the hub's is parsed. */
export function verifyOffer(payload: Buffer | string, publicPem: string, where: string): ReleaseManifest {
  let offer: Partial<ReleaseOffer>;
  try { offer = JSON.parse(payload.toString()) as Partial<ReleaseOffer>; } catch { throw refused(where, 'the release message is not JSON'); }
  if (typeof offer.manifest !== 'string' || typeof offer.signature !== 'string' || !offer.signature) throw refused(where, 'the release has no manifest or no signature');
  const bytes = Buffer.from(offer.manifest, 'utf8');
  let ok = false;
  try { ok = verify(null, bytes, createPublicKey(publicPem), Buffer.from(offer.signature, 'base64')); } catch (err) {
    throw refused(where, `the signature cannot be read (${(err as Error).message})`);
  }
  if (!ok) throw refused(where, 'the signature does not match the release manifest (altered, or signed by another hub)');
  let m: Partial<ReleaseManifest>;
  try { m = JSON.parse(offer.manifest) as Partial<ReleaseManifest>; } catch { throw refused(where, 'the signed manifest is not JSON'); }
  if (m.format !== RELEASE_FORMAT) throw refused(where, `not a ${RELEASE_FORMAT} manifest`);
  if (typeof m.version !== 'string' || !VERSION_RE.test(m.version)) throw refused(where, `version ${JSON.stringify(m.version)} is not valid`);
  if (typeof m.arch !== 'string' || !/^[a-z0-9_]{2,16}$/.test(m.arch)) throw refused(where, 'arch is not valid');
  if (typeof m.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(m.sha256)) throw refused(where, 'sha256 is not 64 hex digits');
  if (!Number.isSafeInteger(m.size) || m.size! <= 0) throw refused(where, 'size is not valid');
  return m as ReleaseManifest;
}
