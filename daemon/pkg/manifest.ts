import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { YachayError } from '../errors.js';
import { LESSON_ID } from '../catalog/lessons.js';
import type { LessonMiss, RenditionInfo } from '../catalog/lessons.js';

/**
 * A lesson as it travels (hub → box, USB drive, peer box): every file of its published folder
 * with size and sha256. Signed by the hub as exact bytes (sign.ts), so the JSON is never
 * re-serialised between signing and checking.
 */
export const MANIFEST_FORMAT = 'yachay-lesson/1';

export interface ManifestFile { path: string; sha256: string; size: number }

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  id: string;
  title: string;
  channel: string;
  /** grows by one each time the hub publishes the lesson again */
  version: number;
  durationS: number;
  renditions: RenditionInfo[];
  misses: LessonMiss[];
  publishedAt: string;
  files: ManifestFile[];
  /** sum of the files' sizes: what a box needs on disk and, at most, over the link */
  bytes: number;
}

export type ManifestMeta = Pick<Manifest, 'id' | 'title' | 'channel' | 'version' | 'durationS' | 'renditions' | 'misses'> & { publishedAt?: string };

/** download/ is remuxed by the box from the renditions: sending it would double the bytes */
const NOT_SENT = new Set(['download']);
const SHA256 = /^[0-9a-f]{64}$/;
/** a relative path of a package file: no "..", no absolute path, no hidden or odd names */
const FILE_PATH = /^(?:[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\/){0,3}[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/;
export const CHANNEL = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
const MAX_FILES = 200_000;

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function listFiles(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (!rel && NOT_SENT.has(e.name)) continue;
    if (e.isDirectory()) out.push(...await listFiles(root, p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

export async function buildManifest(lessonDir: string, meta: ManifestMeta): Promise<Manifest> {
  const files: ManifestFile[] = [];
  for (const path of (await listFiles(lessonDir)).sort()) {
    const full = join(lessonDir, path);
    files.push({ path, sha256: await sha256File(full), size: (await stat(full)).size });
  }
  const m: Manifest = {
    format: MANIFEST_FORMAT, id: meta.id, title: meta.title, channel: meta.channel, version: meta.version,
    durationS: meta.durationS, renditions: meta.renditions, misses: meta.misses,
    publishedAt: meta.publishedAt ?? new Date().toISOString(), files,
    bytes: files.reduce((n, f) => n + f.size, 0),
  };
  return parseManifest(manifestBytes(m), lessonDir);
}

export function manifestBytes(m: Manifest): Buffer {
  return Buffer.from(JSON.stringify(m, null, 1) + '\n');
}

function bad(where: string, what: string): YachayError {
  return new YachayError('YCH_ERR_PACKAGE_INVALID', `${where}: ${what}`);
}

/**
 * Everything a box later uses as a path or a count is checked here, once: a manifest names the
 * files the box will create, so a signed but odd manifest must still not reach outside the store.
 */
export function parseManifest(bytes: Buffer, where: string): Manifest {
  let m: Partial<Manifest>;
  try { m = JSON.parse(bytes.toString('utf8')) as Partial<Manifest>; } catch { throw bad(where, 'the manifest is not JSON'); }
  if (!m || typeof m !== 'object' || m.format !== MANIFEST_FORMAT) throw bad(where, `not a ${MANIFEST_FORMAT} manifest`);
  if (typeof m.id !== 'string' || !LESSON_ID.test(m.id)) throw bad(where, `lesson id ${JSON.stringify(m.id)} is not valid`);
  if (typeof m.title !== 'string' || !m.title.trim()) throw bad(where, 'the lesson has no title');
  if (typeof m.channel !== 'string' || !CHANNEL.test(m.channel)) throw bad(where, `channel ${JSON.stringify(m.channel)} is not valid`);
  if (!Number.isInteger(m.version) || m.version! < 1) throw bad(where, 'version must be a positive integer');
  if (typeof m.durationS !== 'number' || !(m.durationS >= 0)) throw bad(where, 'durationS must be a number');
  if (!Array.isArray(m.renditions) || !Array.isArray(m.misses)) throw bad(where, 'renditions and misses must be lists');
  if (!Array.isArray(m.files) || m.files.length === 0 || m.files.length > MAX_FILES) throw bad(where, 'the file list is empty or too long');
  const seen = new Set<string>(); let total = 0;
  for (const f of m.files) {
    if (!f || typeof f.path !== 'string' || !FILE_PATH.test(f.path) || f.path.split('/').some((s) => s === '..' || s === '.')) {
      throw bad(where, `file path ${JSON.stringify(f?.path)} is not allowed`);
    }
    if (posix.normalize(f.path) !== f.path || seen.has(f.path)) throw bad(where, `file path ${f.path} repeats or is not normal`);
    if (NOT_SENT.has(f.path.split('/')[0]!)) throw bad(where, `${f.path}: download/ is made by the box`);
    if (typeof f.sha256 !== 'string' || !SHA256.test(f.sha256)) throw bad(where, `${f.path}: sha256 is not 64 hex digits`);
    if (!Number.isSafeInteger(f.size) || f.size < 0) throw bad(where, `${f.path}: size is not valid`);
    seen.add(f.path); total += f.size;
  }
  if (!seen.has('master.m3u8')) throw bad(where, 'the package has no master.m3u8');
  if (m.bytes !== total) throw bad(where, `bytes ${m.bytes} differs from the files' total ${total}`);
  return m as Manifest;
}
