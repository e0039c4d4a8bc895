import { open, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { extname, join, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Db } from '../db/db.js';
import { HttpError } from './routes/common.js';

/**
 * /media/<lessonId>/<rest>: the HLS packages of the content store, served by our own handler
 * (not @fastify/static) because three things here are ours to decide: which names may be asked
 * for at all, how Range behaves, and counting the bytes that went out per rendition.
 *
 * Path safety, in order (each step alone would stop the classic attacks; together they also
 * stop the ones we have not thought of):
 *  1. the raw URL (not Fastify's decoded param) is percent-decoded exactly once; a backslash,
 *     NUL or `%` left after that single decode (a double-encoded `%252e`) is a 400;
 *  2. every segment must match SAFE_SEGMENT: letters, digits, `.`, `_`, `-`, not starting with a
 *     dot, so `..`, hidden files and empty segments never reach the file system;
 *  3. the extension must be one an HLS package has (TYPES), else 404;
 *  4. the file's realpath must stay inside the store's realpath, so a symlink inside the store
 *     that points elsewhere (say /etc) is a 404; the file is then opened by that resolved path.
 */

const SAFE_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;
const MAX_DEPTH = 4;

const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Playlists change when a lesson is re-published; segments never do (new package = new names). */
const TYPES: Record<string, { type: string; cache: string }> = {
  '.m3u8': { type: 'application/vnd.apple.mpegurl', cache: 'no-cache' },
  '.m4s': { type: 'video/iso.segment', cache: IMMUTABLE },
  '.mp4': { type: 'video/mp4', cache: IMMUTABLE },
  '.ts': { type: 'video/mp2t', cache: IMMUTABLE },
  '.vtt': { type: 'text/vtt; charset=utf-8', cache: 'no-cache' },
  '.jpg': { type: 'image/jpeg', cache: 'public, max-age=86400' },
  '.png': { type: 'image/png', cache: 'public, max-age=86400' },
};

export interface MediaTarget {
  lessonId: string;
  /** first sub-folder (v0, a-opus…), or 'master' for files at the lesson's top level */
  rendition: string;
  /** path relative to the store, with the platform separator */
  rel: string;
  ext: string;
}

/** Checks and splits the part of the raw URL after `/media/`. Throws HttpError 400/404. */
export function parseMediaPath(rawTail: string): MediaTarget {
  const q = rawTail.indexOf('?');
  const encoded = q >= 0 ? rawTail.slice(0, q) : rawTail;
  if (encoded.includes('\\') || /%5c/i.test(encoded)) throw bad('backslash in media path');
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    throw bad('malformed percent-encoding in media path');
  }
  if (decoded.includes('\0')) throw bad('NUL in media path');
  if (decoded.includes('%')) throw bad('double-encoded media path');
  if (decoded.includes('\\')) throw bad('backslash in media path');
  const parts = decoded.split('/');
  if (parts.length < 2 || parts.length > MAX_DEPTH) throw notFound();
  for (const p of parts) {
    if (p === '.' || p === '..') throw bad('dot segment in media path');
    if (!SAFE_SEGMENT.test(p)) throw bad('unexpected character in media path');
  }
  const ext = extname(parts[parts.length - 1]!).toLowerCase();
  if (!(ext in TYPES)) throw notFound();
  return {
    lessonId: parts[0]!,
    rendition: parts.length > 2 ? parts[1]! : 'master',
    rel: parts.join(sep),
    ext,
  };
}

function bad(msg: string): HttpError {
  return new HttpError(400, 'YCH_HTTP_BAD_PATH', msg);
}
function notFound(): HttpError {
  return new HttpError(404, 'YCH_HTTP_NOT_FOUND', 'no such media file');
}

export type ByteRange = { start: number; end: number };

/**
 * One `Range` header against a file of `size` bytes (RFC 9110 §14.2):
 * - absent, not `bytes=`, syntactically malformed, or several ranges → 'ignore': the whole file
 *   with 200 (a server may ignore Range; HLS players never ask for multipart/byteranges, and
 *   answering one range list with one full body is simpler and safe);
 * - one satisfiable range → that range, clamped to the file (206);
 * - one syntactically valid but unsatisfiable range (start ≥ size, or `-0`) → 'unsatisfiable' (416).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'ignore' | 'unsatisfiable' {
  if (!header) return 'ignore';
  const m = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (!m) return 'ignore';
  const [, a, b] = m;
  if (a === '' && b === '') return 'ignore';
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? Infinity : Number(b);
  if (end < start) return 'ignore';
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

/**
 * Bytes sent per (lesson, rendition), summed in memory and written to byte_counts in one
 * transaction every few seconds and at close, so a busy classroom costs one write per interval,
 * not one per segment.
 */
export class ByteCounter {
  private pending = new Map<string, { lessonId: string; rendition: string; bytes: number; requests: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly onBytes?: (rendition: string, bytes: number) => void,
  ) {}

  add(lessonId: string, rendition: string, bytes: number, requests = 1): void {
    this.merge(lessonId, rendition, bytes, requests);
    if (bytes > 0) this.onBytes?.(rendition, bytes);
  }

  private merge(lessonId: string, rendition: string, bytes: number, requests: number): void {
    const key = `${lessonId}\0${rendition}`;
    const e = this.pending.get(key);
    if (e) { e.bytes += bytes; e.requests += requests; } else this.pending.set(key, { lessonId, rendition, bytes, requests });
  }

  start(everyMs: number): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.flush(), everyMs);
    this.timer.unref();
  }

  /** Writes what was counted; on a database error keeps it in memory for the next try. */
  flush(): number {
    if (this.pending.size === 0) return 0;
    const rows = [...this.pending.values()];
    this.pending = new Map();
    try {
      const up = this.db.prepare(
        `INSERT INTO byte_counts (lesson_id, rendition, bytes, requests) VALUES (?, ?, ?, ?)
         ON CONFLICT (lesson_id, rendition) DO UPDATE SET bytes = bytes + excluded.bytes, requests = requests + excluded.requests`,
      );
      this.db.transaction(() => { for (const r of rows) up.run(r.lessonId, r.rendition, r.bytes, r.requests); })();
      return rows.length;
    } catch (err) {
      this.log.warn({ err, rows: rows.length }, 'byte accounting not written, will retry');
      for (const r of rows) this.merge(r.lessonId, r.rendition, r.bytes, r.requests);
      return 0;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.db.open) this.flush();
  }
}

export interface MediaOptions {
  store: string;
  counter: ByteCounter;
  /** runs before serving (e.g. a login check when students need accounts) */
  guard?: (req: FastifyRequest) => void;
}

function etagOf(st: Stats): string {
  return `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
}

/** If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/ prefixes do not matter. */
function noneMatch(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === bare);
}

function notModified(req: FastifyRequest, etag: string, mtimeMs: number): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) return noneMatch(inm, etag);
  const ims = req.headers['if-modified-since'];
  if (ims) {
    const t = Date.parse(ims);
    // HTTP dates have whole seconds
    if (!Number.isNaN(t)) return Math.floor(mtimeMs / 1000) * 1000 <= t;
  }
  return false;
}

/** If-Range: the Range applies only when the validator still matches (strong comparison). */
function rangeStillValid(req: FastifyRequest, etag: string, lastModified: string): boolean {
  const ir = req.headers['if-range'];
  if (Array.isArray(ir)) return false;
  if (!ir) return true;
  return ir.startsWith('"') ? ir === etag : ir === lastModified;
}

/**
 * Small files (segments, init, playlists) kept in memory: 30 phones play the same lesson, so the
 * same few files are asked for again and again, and every fs call goes through libuv's four
 * threads. An entry is trusted for REVALIDATE_MS, then re-checked with realpath + stat (a
 * republished lesson is a new folder, so its files differ in mtime or size).
 */
const CACHE_MAX_FILE = 2 * 1024 * 1024;
const CACHE_MAX_TOTAL = 64 * 1024 * 1024;
const REVALIDATE_MS = 1000;
interface Cached { real: string; buf: Buffer; mtimeMs: number; size: number; checkedAt: number }

class FileCache {
  private readonly map = new Map<string, Cached>();
  private total = 0;
  get(key: string): Cached | undefined {
    const e = this.map.get(key);
    if (e) { this.map.delete(key); this.map.set(key, e); } // most recently used last
    return e;
  }
  set(key: string, e: Cached): void {
    const old = this.map.get(key);
    if (old) { this.total -= old.buf.length; this.map.delete(key); }
    this.map.set(key, e);
    this.total += e.buf.length;
    for (const [k, v] of this.map) {
      if (this.total <= CACHE_MAX_TOTAL) break;
      this.map.delete(k); this.total -= v.buf.length;
    }
  }
}

export async function mediaRoutes(app: FastifyInstance, opts: MediaOptions): Promise<void> {
  const cache = new FileCache();
  let storeReal: string | undefined;
  const storeRoot = async (): Promise<string> => {
    // resolved lazily: the store may be created after the server starts
    if (!storeReal) storeReal = await realpath(opts.store);
    return storeReal;
  };

  const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    opts.guard?.(req);
    const raw = req.raw.url ?? '';
    const target = parseMediaPath(raw.slice('/media/'.length));
    let root: string; let real: string;
    try {
      root = await storeRoot();
      real = await realpath(join(root, target.rel));
    } catch {
      throw notFound();
    }
    if (!real.startsWith(root + sep)) {
      req.log.warn({ url: raw }, 'media path resolves outside the content store');
      throw notFound();
    }
    const type = TYPES[target.ext]!;
    const isHead = req.method === 'HEAD';
    const hit = cache.get(target.rel);
    if (hit && Date.now() - hit.checkedAt < REVALIDATE_MS) {
      return sendBuffer(req, reply, hit, type, target, isHead);
    }
    // HEAD needs no descriptor; GET opens first and fstat()s the open file, so the size we
    // promise is the size of what we read
    const fh = isHead ? undefined : await open(real, 'r').catch(() => undefined);
    let st: Stats;
    try {
      st = fh ? await fh.stat() : await stat(real);
    } catch {
      await fh?.close();
      throw notFound();
    }
    if (!st.isFile() || (!isHead && !fh)) {
      await fh?.close();
      throw notFound();
    }
    if (st.size <= CACHE_MAX_FILE) {
      if (hit && hit.real === real && hit.mtimeMs === st.mtimeMs && hit.size === st.size) {
        await fh?.close();
        hit.checkedAt = Date.now();
        return sendBuffer(req, reply, hit, type, target, isHead);
      }
      if (fh) {
        const buf = Buffer.alloc(st.size);
        const { bytesRead } = await fh.read(buf, 0, st.size, 0).finally(() => fh.close());
        if (bytesRead === st.size) {
          const entry = { real, buf, mtimeMs: st.mtimeMs, size: st.size, checkedAt: Date.now() };
          cache.set(target.rel, entry);
          return sendBuffer(req, reply, entry, type, target, isHead);
        }
        throw notFound(); // the file changed under us: the next request will see the new one
      }
    }
    const etag = etagOf(st);
    const lastModified = new Date(st.mtimeMs).toUTCString();
    reply.header('content-type', type.type)
      .header('cache-control', type.cache)
      .header('etag', etag)
      .header('last-modified', lastModified)
      .header('accept-ranges', 'bytes');
    if (notModified(req, etag, st.mtimeMs)) {
      await fh?.close();
      return reply.code(304).send();
    }
    const range = rangeStillValid(req, etag, lastModified) ? parseRange(req.headers.range, st.size) : 'ignore';
    if (range === 'unsatisfiable') {
      await fh?.close();
      return reply.code(416).header('content-range', `bytes */${st.size}`).header('content-type', 'text/plain; charset=utf-8').send('range not satisfiable\n');
    }
    const start = range === 'ignore' ? 0 : range.start;
    const end = range === 'ignore' ? st.size - 1 : range.end;
    const length = Math.max(0, end - start + 1);
    if (range !== 'ignore') reply.code(206).header('content-range', `bytes ${start}-${end}/${st.size}`);
    reply.header('content-length', length);
    if (isHead || length === 0) {
      await fh?.close();
      if (!isHead) opts.counter.add(target.lessonId, target.rendition, 0);
      return reply.send();
    }
    const stream = fh!.createReadStream({ start, end, autoClose: true, highWaterMark: 64 * 1024 });
    // bytes handed to the socket: what the stream produced minus what is still queued in the
    // response when it closes (an aborted download is counted up to where it stopped)
    let produced = 0;
    stream.on('data', (c: Buffer | string) => { produced += c.length; });
    reply.raw.once('close', () => {
      const queued = reply.raw.writableFinished ? 0 : reply.raw.writableLength;
      opts.counter.add(target.lessonId, target.rendition, Math.max(0, produced - queued));
    });
    return reply.send(stream);
  };

  /** The same answers as the streaming path below, from memory. */
  const sendBuffer = (req: FastifyRequest, reply: FastifyReply, e: Cached, type: { type: string; cache: string },
    target: MediaTarget, isHead: boolean): FastifyReply => {
    const etag = etagOf({ size: e.size, mtimeMs: e.mtimeMs } as Stats);
    const lastModified = new Date(e.mtimeMs).toUTCString();
    reply.header('content-type', type.type).header('cache-control', type.cache).header('etag', etag)
      .header('last-modified', lastModified).header('accept-ranges', 'bytes');
    if (notModified(req, etag, e.mtimeMs)) return reply.code(304).send();
    const range = rangeStillValid(req, etag, lastModified) ? parseRange(req.headers.range, e.size) : 'ignore';
    if (range === 'unsatisfiable') {
      return reply.code(416).header('content-range', `bytes */${e.size}`).header('content-type', 'text/plain; charset=utf-8').send('range not satisfiable\n');
    }
    const start = range === 'ignore' ? 0 : range.start;
    const end = range === 'ignore' ? e.size - 1 : range.end;
    if (range !== 'ignore') reply.code(206).header('content-range', `bytes ${start}-${end}/${e.size}`);
    const body = e.buf.subarray(start, end + 1);
    reply.header('content-length', body.length);
    if (isHead) return reply.send();
    reply.raw.once('close', () => {
      const queued = reply.raw.writableFinished ? 0 : reply.raw.writableLength;
      opts.counter.add(target.lessonId, target.rendition, Math.max(0, body.length - queued));
    });
    return reply.send(body);
  };

  app.route({ method: ['GET', 'HEAD'], url: '/media/*', handler });
}
