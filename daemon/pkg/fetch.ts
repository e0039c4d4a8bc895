import { open, rename, rm, stat, truncate } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { YachayError } from '../errors.js';
import { fsyncFile, ioError, isDiskFull } from '../util/atomic.js';
import { sha256File } from './manifest.js';

/**
 * Bytes from an origin over a link that drops: every blob is fetched into `<dest>.part`, which
 * survives a dropped link, a killed process and a power cut, and is resumed with an HTTP Range
 * request; only a blob whose sha256 matches gets its real name.
 */

/**
 * Keeps the sync under the school's share of the satellite link. One bucket is shared by all
 * fetches of a box, so the cap holds however many run.
 */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();
  readonly bytesPerS: number;
  readonly burst: number;

  constructor(rateKbps: number, burstBytes?: number) {
    if (!(rateKbps > 0)) throw new RangeError(`rate must be > 0 kb/s (got ${rateKbps})`);
    this.bytesPerS = (rateKbps * 1000) / 8;
    // a quarter second of traffic: smooth enough for a 512 kb/s link, few wake-ups at 100 Mb/s
    this.burst = Math.max(16 * 1024, burstBytes ?? Math.ceil(this.bytesPerS / 4));
    this.tokens = this.burst;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.bytesPerS);
    this.last = now;
  }

  async take(n: number, signal?: AbortSignal): Promise<void> {
    let left = n;
    while (left > 0) {
      signal?.throwIfAborted();
      this.refill();
      const want = Math.min(left, this.burst);
      if (this.tokens >= want) { this.tokens -= want; left -= want; continue; }
      const waitMs = Math.ceil(((want - this.tokens) / this.bytesPerS) * 1000);
      await sleep(waitMs, signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(t); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface FetchBlobOptions {
  url: string;
  dest: string;
  sha256: string;
  size: number;
  bucket?: TokenBucket | undefined;
  signal?: AbortSignal | undefined;
  onBytes?: ((n: number) => void) | undefined;
  /** no byte for this long is a dead link, not a slow one (default 60 s) */
  idleMs?: number | undefined;
}

async function sizeOf(path: string): Promise<number> {
  try { return (await stat(path)).size; } catch { return 0; }
}

function unreachable(url: string, err: unknown): YachayError {
  return new YachayError('YCH_ERR_HUB_UNREACHABLE', `${url}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/** An abort asked by the caller stays an abort; an idle link becomes "unreachable". */
function linkSignal(signal: AbortSignal | undefined, idleMs: number): { signal: AbortSignal; poke(): void; done(): void } {
  const idle = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const poke = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new Error(`no data for ${Math.round(idleMs / 1000)} s`)), idleMs);
  };
  poke();
  return { signal: signal ? AbortSignal.any([signal, idle.signal]) : idle.signal, poke, done: () => clearTimeout(timer) };
}

/** a full disk is not a dropped link: no retry now, and the bytes already written wait for room */
function partKept(err: unknown, o: FetchBlobOptions, bytes: number): YachayError {
  return new YachayError('YCH_ERR_DISK_FULL', `disco lleno / disk full after ${bytes} of ${o.size} bytes of blob ${o.sha256}: the partial file is kept and resumes once there is room`, { cause: err });
}

export async function fetchBlob(o: FetchBlobOptions): Promise<{ fetched: number; resumed: boolean }> {
  const part = `${o.dest}.part`;
  await mkdir(dirname(o.dest), { recursive: true });
  let have = await sizeOf(part);
  if (have > o.size) { await truncate(part, 0); have = 0; }
  let fetched = 0; const resumed = have > 0;
  if (have < o.size) {
    const link = linkSignal(o.signal, o.idleMs ?? 60_000);
    let fh;
    try {
      let res: Response;
      try {
        res = await fetch(o.url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {}, signal: link.signal });
      } catch (err) {
        o.signal?.throwIfAborted();
        throw unreachable(o.url, err);
      }
      if (res.status === 200 && have > 0) { have = 0; } // the origin ignores Range: start over
      else if (res.status === 416) { have = 0; await truncate(part, 0); await res.body?.cancel(); return fetchBlob(o); }
      else if (res.status !== 200 && res.status !== 206) {
        await res.body?.cancel();
        if (res.status === 404) throw new YachayError('YCH_ERR_PACKAGE_INVALID', `${o.url}: the origin has no such blob (404)`);
        throw unreachable(o.url, new Error(`HTTP ${res.status}`));
      }
      try { fh = await open(part, have > 0 ? 'a' : 'w'); } catch (err) { await res.body?.cancel(); throw ioError(err, `opening ${part}`); }
      if (!res.body) throw unreachable(o.url, new Error('empty response'));
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          link.poke();
          if (have + fetched + chunk.length > o.size) throw new YachayError('YCH_ERR_PACKAGE_HASH', `${o.url}: the origin sent more than the manifest's ${o.size} bytes`);
          if (o.bucket) await o.bucket.take(chunk.length, o.signal);
          await fh.write(chunk);
          fetched += chunk.length;
          o.onBytes?.(chunk.length);
        }
      } catch (err) {
        if (err instanceof YachayError) throw err;
        o.signal?.throwIfAborted();
        if (isDiskFull(err)) throw partKept(err, o, have + fetched);
        throw unreachable(o.url, err);
      }
      try { await fh.sync(); } catch (err) { throw isDiskFull(err) ? partKept(err, o, have + fetched) : ioError(err, `writing ${part}`); }
    } finally {
      link.done();
      await fh?.close();
    }
    if (have + fetched < o.size) throw unreachable(o.url, new Error(`connection closed after ${have + fetched} of ${o.size} bytes`));
  }
  const got = await sha256File(part);
  if (got !== o.sha256) {
    await rm(part, { force: true });
    throw new YachayError('YCH_ERR_PACKAGE_HASH', `blob ${o.sha256} from ${o.url}: its content hashes to ${got} (altered or damaged); it will be fetched again`);
  }
  try {
    await rename(part, o.dest);
    await fsyncFile(dirname(o.dest));
  } catch (err) {
    throw ioError(err, `installing blob ${o.dest}`);
  }
  return { fetched, resumed };
}

/** Small files (a manifest, its signature) whole, with the origin's clock from the Date header. */
export async function fetchBytes(url: string, opts: { signal?: AbortSignal | undefined; maxBytes?: number | undefined; idleMs?: number | undefined } = {}): Promise<{ body: Buffer; date?: number | undefined; status: number }> {
  const max = opts.maxBytes ?? 16 << 20;
  const link = linkSignal(opts.signal, opts.idleMs ?? 60_000);
  try {
    let res: Response;
    try { res = await fetch(url, { signal: link.signal }); } catch (err) { opts.signal?.throwIfAborted(); throw unreachable(url, err); }
    const dateHeader = res.headers.get('date');
    const date = dateHeader ? Date.parse(dateHeader) : NaN;
    const chunks: Buffer[] = []; let n = 0;
    try {
      for await (const chunk of (res.body ?? []) as unknown as AsyncIterable<Uint8Array>) {
        link.poke();
        n += chunk.length;
        if (n > max) throw new YachayError('YCH_ERR_PACKAGE_INVALID', `${url}: larger than ${max} bytes`);
        chunks.push(Buffer.from(chunk));
      }
    } catch (err) {
      if (err instanceof YachayError) throw err;
      opts.signal?.throwIfAborted();
      throw unreachable(url, err);
    }
    return { body: Buffer.concat(chunks), date: Number.isFinite(date) ? date : undefined, status: res.status };
  } finally {
    link.done();
  }
}
