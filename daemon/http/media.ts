import { open, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { extname, join, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Db } from '../db/db.js';
import { YachayError } from '../errors.js';
import {
  answerFromMemory, bytesSent, CACHE_MAX_FILE, cachedFile, etagOf, notModified, parseRange, rangeStillValid,
  type CachedFile, type FileCache,
} from './media-cache.js';

export { parseRange, type ByteRange } from './media-cache.js';

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
  '.m4a': { type: 'audio/mp4', cache: IMMUTABLE },
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

/** Checks and splits the part of the raw URL after `/media/`. Throws YachayError YCH_HTTP_BAD_PATH (400) or YCH_HTTP_NOT_FOUND (404). */
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

function bad(msg: string): YachayError {
  return new YachayError('YCH_HTTP_BAD_PATH', msg);
}
function notFound(): YachayError {
  return new YachayError('YCH_HTTP_NOT_FOUND', 'no such media file');
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

/**
 * The store's realpath, resolved on first use (the store may be created after the server
 * starts) and then kept: every request and every background re-check compares against it.
 */
export function storeRealpath(store: string): () => Promise<string> {
  let real: string | undefined;
  return async () => (real ??= await realpath(store));
}

export interface MediaOptions {
  /** the content store's realpath (storeRealpath) */
  storeRoot: () => Promise<string>;
  counter: ByteCounter;
  /** shared with MediaFastPath, which answers fresh entries before Fastify */
  cache: FileCache;
  /** runs before serving (e.g. a login check when students need accounts) */
  guard?: (req: FastifyRequest) => void;
}

export async function mediaRoutes(app: FastifyInstance, opts: MediaOptions): Promise<void> {
  const { cache, storeRoot } = opts;

  const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    opts.guard?.(req);
    const raw = req.raw.url ?? '';
    const target = parseMediaPath(raw.slice('/media/'.length));
    const hit = cache.get(target.rel);
    try {
      return await serveFile(req, reply, target, hit);
    } catch (err) {
      // the file is gone or no longer safe: stop answering it from memory
      if (hit && err instanceof YachayError && err.status === 404) cache.delete(target.rel);
      throw err;
    }
  };

  const serveFile = async (req: FastifyRequest, reply: FastifyReply, target: MediaTarget, hit: CachedFile | undefined): Promise<unknown> => {
    const raw = req.raw.url ?? '';
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
    // the single-file downloads keep their names when a lesson is published again: revalidate
    const type = target.rendition === 'download' ? { ...TYPES[target.ext]!, cache: 'no-cache' } : TYPES[target.ext]!;
    const isHead = req.method === 'HEAD';
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
    // an empty init or segment is a damaged package (a power cut, a full disk): a phone that got
    // it with a year's cache would keep it for a year
    if (st.size === 0) {
      await fh?.close();
      req.log.warn({ url: raw }, 'empty media file: the package is damaged');
      throw new YachayError('YCH_HTTP_DAMAGED', 'this part of the lesson is damaged on the box: the teacher can re-encode it', { headers: { 'cache-control': 'no-store' } });
    }
    if (st.size <= CACHE_MAX_FILE) {
      if (hit && hit.real === real && hit.mtimeMs === st.mtimeMs && hit.size === st.size) {
        await fh?.close();
        hit.checkedAt = Date.now();
        return sendCached(req, reply, hit);
      }
      if (fh) {
        const buf = Buffer.alloc(st.size);
        const { bytesRead } = await fh.read(buf, 0, st.size, 0).finally(() => fh.close());
        if (bytesRead === st.size) {
          const entry = cachedFile({ real, buf, mtimeMs: st.mtimeMs, lessonId: target.lessonId, rendition: target.rendition, type, now: Date.now() });
          cache.set(target.rel, entry);
          return sendCached(req, reply, entry);
        }
        throw notFound(); // the file changed under us: the next request will see the new one
      }
    }
    const etag = etagOf(st.size, st.mtimeMs);
    const lastModified = new Date(st.mtimeMs).toUTCString();
    reply.header('content-type', type.type)
      .header('cache-control', type.cache)
      .header('etag', etag)
      .header('last-modified', lastModified)
      .header('accept-ranges', 'bytes');
    if (notModified(req.headers, etag, st.mtimeMs)) {
      await fh?.close();
      return reply.code(304).send();
    }
    const range = rangeStillValid(req.headers, etag, lastModified) ? parseRange(req.headers.range, st.size) : 'ignore';
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
    // response when it closes
    let produced = 0;
    stream.on('data', (c: Buffer | string) => { produced += c.length; });
    reply.raw.once('close', () => opts.counter.add(target.lessonId, target.rendition, bytesSent(reply.raw, produced)));
    return reply.send(stream);
  };

  /** The same answer MediaFastPath gives, through Fastify (first request, revalidation, inject()). */
  const sendCached = (req: FastifyRequest, reply: FastifyReply, e: CachedFile): FastifyReply => {
    const a = answerFromMemory(req.headers, req.method === 'HEAD', e);
    reply.code(a.status).headers(a.headers);
    if (req.method === 'GET') {
      if (a.mediaBytes > 0) reply.raw.once('close', () => opts.counter.add(e.lessonId, e.rendition, bytesSent(reply.raw, a.mediaBytes)));
      else opts.counter.add(e.lessonId, e.rendition, 0);
    }
    return reply.send(a.body);
  };

  app.route({ method: ['GET', 'HEAD'], url: '/media/*', handler });
}

/** The cache key of a raw /media/ tail, for MediaFastPath; throws what parseMediaPath throws. */
export function mediaKey(rawTail: string): string {
  return parseMediaPath(rawTail).rel;
}

/**
 * Checks, off the request path, that a file answered from memory is still the one on disk: the
 * same realpath inside the store, a regular file of the same size and mtime. If so the entry is
 * trusted for another REVALIDATE_MS; if not it is dropped, and the next request reads the file
 * again through Fastify (a republished lesson, a removed one).
 */
export async function recheckCached(storeRoot: () => Promise<string>, key: string, e: CachedFile, cache: FileCache): Promise<void> {
  try {
    const root = await storeRoot();
    const real = await realpath(join(root, key));
    const st = await stat(real);
    if (real === e.real && real.startsWith(root + sep) && st.isFile() && st.mtimeMs === e.mtimeMs && st.size === e.size) {
      e.checkedAt = Date.now();
    } else if (cache.peek(key) === e) {
      cache.delete(key);
    }
  } catch {
    if (cache.peek(key) === e) cache.delete(key);
  } finally {
    e.revalidatingSince = 0;
  }
}
