import { readFileSync, realpathSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { REPO_ROOT } from '../paths.js';

/**
 * Which release is running, and where the releases live. A release bundle carries a VERSION
 * file at its top (issue 11 item 7, contract with provisioning); a developer checkout has none
 * and reports package.json's version. The release folder is found from this file's real path:
 * `node /opt/yachay/current/bin/yachay.mjs` runs from `/opt/yachay/releases/<version>/` because
 * Node resolves the main module's links.
 */
/** a version as it appears in a folder name and a topic: no slash, no dot-dot, short */
export const VERSION_RE = /^[0-9][0-9A-Za-z.+_-]{0,63}$/;

const RELEASE_DIR = realpathSync(REPO_ROOT);

export const RUNNING_VERSION: string = (() => {
  try {
    const v = readFileSync(join(REPO_ROOT, 'VERSION'), 'utf8').trim();
    if (VERSION_RE.test(v)) return v;
  } catch { /* a checkout, not a bundle */ }
  try { return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version; } catch { return 'unknown'; }
})();

/** this program's release folder (`<root>/releases/<v>`), or a checkout */
export function releaseDir(): string { return RELEASE_DIR; }

/** `<root>` when this program runs from `<root>/releases/<v>`; undefined for a checkout */
export function detectRoot(dir = RELEASE_DIR): string | undefined {
  const parent = dirname(dir);
  return basename(parent) === 'releases' ? dirname(parent) : undefined;
}

/**
 * Orders versions part by part ("0.10.0" after "0.9.1", "2026.12.3-2" after "2026.12.3-1"):
 * numbers as numbers, other parts as text, a longer version after its prefix.
 */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+_-]/); const pb = b.split(/[.+_-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i]; const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x) ? Number(x) : NaN; const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) { if (nx !== ny) return nx < ny ? -1 : 1; continue; }
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** node's names for the two arches a box runs on; bundle names may use Debian's */
export function normalizeArch(a: string): string {
  const x = a.toLowerCase();
  if (x === 'amd64' || x === 'x86_64') return 'x64';
  if (x === 'aarch64') return 'arm64';
  return x;
}
