import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

/**
 * Media files kept in memory, and the answers given from memory.
 *
 * 30 phones play the same lesson, so the same few playlists and segments are asked for again and
 * again. Going through realpath + open + fstat for each, and through Fastify's request pipeline,
 * made the box serve a third of what nginx serves on the same files. A file that media.ts has
 * checked (safe path, inside the store, a regular file) is kept here with its response headers
 * computed once, and checked again in the background every REVALIDATE_MS. `MediaFastPath`
 * answers requests for it from Node's request event, before Fastify (one HTTP parser, Node's,
 * reads every request: a faster raw-socket reader was removed for its laxer parsing). Everything
 * else (the first request for a file, one that changed on disk, bad paths, errors, a server
 * that is closing, a box that asks students to log in) goes to Fastify and media.ts, which
 * refill the cache.
 */

/** Above this a file is streamed from disk, never cached (a whole-lesson MP4, say). */
export const CACHE_MAX_FILE = 2 * 1024 * 1024;
const CACHE_MAX_TOTAL = 64 * 1024 * 1024;
/** How long a checked file is trusted. A republished lesson is a new folder: new mtime or size. */
export const REVALIDATE_MS = 1000;

export interface MediaType { type: string; cache: string }

export interface CachedFile {
  /** the file's realpath when it was checked */
  real: string;
  buf: Buffer;
  mtimeMs: number;
  size: number;
  checkedAt: number;
  lessonId: string;
  rendition: string;
  etag: string;
  lastModified: string;
  /** the headers of a full 200 answer, built once */
  headers: OutgoingHttpHeaders;
  /** when the background re-check under way started (0: none): one at a time per file */
  revalidatingSince: number;
}

export function etagOf(size: number, mtimeMs: number): string {
  return `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
}

export function cachedFile(args: {
  real: string; buf: Buffer; mtimeMs: number; lessonId: string; rendition: string; type: MediaType; now: number;
}): CachedFile {
  const etag = etagOf(args.buf.length, args.mtimeMs);
  const lastModified = new Date(args.mtimeMs).toUTCString();
  return {
    real: args.real, buf: args.buf, mtimeMs: args.mtimeMs, size: args.buf.length, checkedAt: args.now, revalidatingSince: 0,
    lessonId: args.lessonId, rendition: args.rendition, etag, lastModified,
    headers: {
      'content-type': args.type.type,
      'cache-control': args.type.cache,
      etag,
      'last-modified': lastModified,
      'accept-ranges': 'bytes',
      'content-length': String(args.buf.length),
    },
  };
}

/** LRU by bytes, keyed by the file's path relative to the store. */
export class FileCache {
  private readonly map = new Map<string, CachedFile>();
  private total = 0;

  get(key: string): CachedFile | undefined {
    const e = this.map.get(key);
    if (e) { this.map.delete(key); this.map.set(key, e); } // most recently used last
    return e;
  }

  /** The entry if it was checked less than REVALIDATE_MS ago. */
  fresh(key: string, now: number): CachedFile | undefined {
    const e = this.map.get(key);
    return e && now - e.checkedAt < REVALIDATE_MS ? e : undefined;
  }

  /** The entry however old, without touching the LRU order. */
  peek(key: string): CachedFile | undefined {
    return this.map.get(key);
  }

  delete(key: string): void {
    const e = this.map.get(key);
    if (e) { this.map.delete(key); this.total -= e.buf.length; }
  }

  set(key: string, e: CachedFile): void {
    const old = this.map.get(key);
    if (old) { this.total -= old.buf.length; this.map.delete(key); }
    this.map.set(key, e);
    this.total += e.buf.length;
    for (const [k, v] of this.map) {
      if (this.total <= CACHE_MAX_TOTAL) break;
      this.map.delete(k); this.total -= v.buf.length;
    }
  }

  get bytes(): number {
    return this.total;
  }
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

/** If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/ prefixes do not matter. */
function noneMatch(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === bare);
}

export function notModified(h: IncomingHttpHeaders, etag: string, mtimeMs: number): boolean {
  const inm = h['if-none-match'];
  if (inm !== undefined) return noneMatch(inm, etag);
  const ims = h['if-modified-since'];
  if (ims) {
    const t = Date.parse(ims);
    // HTTP dates have whole seconds
    if (!Number.isNaN(t)) return Math.floor(mtimeMs / 1000) * 1000 <= t;
  }
  return false;
}

/** If-Range: the Range applies only when the validator still matches (strong comparison). */
export function rangeStillValid(h: IncomingHttpHeaders, etag: string, lastModified: string): boolean {
  const ir = h['if-range'];
  if (Array.isArray(ir)) return false;
  if (!ir) return true;
  return ir.startsWith('"') ? ir === etag : ir === lastModified;
}

export interface MemoryAnswer {
  status: 200 | 206 | 304 | 416;
  headers: OutgoingHttpHeaders;
  /** absent for 304 and HEAD */
  body?: Buffer | string;
  /** media bytes in body (0 for 304, 416, HEAD) */
  mediaBytes: number;
}

/** The answer to GET/HEAD for a file held in memory: conditional requests, one Range, HEAD. */
export function answerFromMemory(h: IncomingHttpHeaders, isHead: boolean, e: CachedFile): MemoryAnswer {
  if (h['if-none-match'] === undefined && h['if-modified-since'] === undefined && h.range === undefined) {
    // what players ask for nearly every time
    return isHead ? { status: 200, headers: e.headers, mediaBytes: 0 } : { status: 200, headers: e.headers, body: e.buf, mediaBytes: e.size };
  }
  const base = { ...e.headers };
  delete base['content-length'];
  if (notModified(h, e.etag, e.mtimeMs)) return { status: 304, headers: base, mediaBytes: 0 };
  const range = rangeStillValid(h, e.etag, e.lastModified) ? parseRange(h.range, e.size) : 'ignore';
  if (range === 'unsatisfiable') {
    const body = 'range not satisfiable\n';
    return {
      status: 416,
      headers: { ...base, 'content-range': `bytes */${e.size}`, 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length) },
      body, mediaBytes: 0,
    };
  }
  if (range === 'ignore') {
    return isHead ? { status: 200, headers: e.headers, mediaBytes: 0 } : { status: 200, headers: e.headers, body: e.buf, mediaBytes: e.size };
  }
  const body = e.buf.subarray(range.start, range.end + 1);
  const headers = { ...base, 'content-range': `bytes ${range.start}-${range.end}/${e.size}`, 'content-length': String(body.length) };
  return isHead ? { status: 206, headers, mediaBytes: 0 } : { status: 206, headers, body, mediaBytes: body.length };
}

/**
 * Bytes of a body that reached the socket when the response closed: all of it once finished,
 * else what is no longer queued (an aborted download counts up to where it stopped).
 */
export function bytesSent(res: ServerResponse, bodyBytes: number): number {
  const queued = res.writableFinished ? 0 : res.writableLength;
  return Math.max(0, bodyBytes - queued);
}

export interface FastPathDeps {
  cache: FileCache;
  /** parses the part after /media/ into the cache key; throws on anything unsafe */
  keyOf: (rawTail: string) => string;
  /** false while the server closes or when every request must pass a login check */
  enabled: () => boolean;
  count: (e: CachedFile, bytes: number) => void;
  /** checks a stale entry against the disk in the background (media.ts recheckCached) */
  recheck: (key: string, e: CachedFile) => void;
  onAnswered: (method: string, status: number) => void;
  now?: () => number;
}

/**
 * Answers GET/HEAD /media/… from a fresh cache entry and returns true, or returns false and
 * touches nothing, so the caller hands the request to Fastify.
 */
export class MediaFastPath {
  private readonly now: () => number;
  constructor(private readonly deps: FastPathDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The answer from memory, or undefined (and nothing touched) when Fastify must answer. */
  private lookup(method: string | undefined, url: string | undefined, h: IncomingHttpHeaders): { a: MemoryAnswer; e: CachedFile } | undefined {
    if (!url || !url.startsWith('/media/') || (method !== 'GET' && method !== 'HEAD') || !this.deps.enabled()) return undefined;
    let key: string;
    try {
      key = this.deps.keyOf(url.slice(7));
    } catch {
      return undefined; // Fastify gives the error its proper answer
    }
    const e = this.deps.cache.peek(key);
    if (!e) return undefined;
    const now = this.now();
    if (now - e.checkedAt >= REVALIDATE_MS && now - e.revalidatingSince >= REVALIDATE_MS) {
      // the file is checked again in the background while this request and the ones that
      // arrive meanwhile get the entry that was valid a moment ago
      e.revalidatingSince = now;
      this.deps.recheck(key, e);
    }
    const a = answerFromMemory(h, method === 'HEAD', e);
    this.deps.onAnswered(method, a.status);
    return { a, e };
  }

  /**
   * From Node's request event, before Fastify: answers from memory and returns true, or
   * returns false so the caller hands the request to Fastify.
   */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    const hit = this.lookup(req.method, req.url, req.headers);
    if (!hit) return false;
    const { a, e } = hit;
    res.writeHead(a.status, a.headers);
    res.end(a.body);
    if (req.method === 'GET') {
      if (a.mediaBytes > 0) res.once('close', () => this.deps.count(e, bytesSent(res, a.mediaBytes)));
      else this.deps.count(e, 0);
    }
    return true;
  }
}
