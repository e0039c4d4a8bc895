/**
 * The box side of the link tests and bench, run inside the box's namespace:
 *   node --import tsx fetch-child.ts '<json job>'
 * job: { origin, root, blobs?: [{sha256,size}], lesson?: {id, publicPem}, rateKbps?, idleMs?,
 *        retryMs?, concurrency? }
 * Fetches with daemon/pkg's fetchBlob under one TokenBucket (what the sync engine uses), retrying
 * a dropped link; with `lesson`, first the signed manifest, then only the blobs the box lacks.
 * One JSON line per event on stdout, so a parent can watch, kill -9 and restart it.
 */
import { BlobStore, originPath } from '../../daemon/pkg/origin.js';
import { TokenBucket, fetchBlob, fetchBytes } from '../../daemon/pkg/fetch.js';
import { verifyManifest } from '../../daemon/pkg/sign.js';
import { missingBlobs } from '../../daemon/pkg/install.js';
import { isYachayError } from '../../daemon/errors.js';

interface Job {
  origin: string;
  root: string;
  blobs?: Array<{ sha256: string; size: number }>;
  lesson?: { id: string; publicPem: string };
  rateKbps?: number;
  idleMs?: number;
  retryMs?: number;
  concurrency?: number;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const say = (e: Record<string, unknown>): void => { process.stdout.write(JSON.stringify({ at: Date.now(), ...e }) + '\n'); };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const blobs = new BlobStore(job.root);
const bucket = job.rateKbps ? new TokenBucket(job.rateKbps) : undefined;
const started = Date.now();
let fetched = 0; let failures = 0; let resumed = 0;
// every body byte received, failed attempts included: what "fetched once" is checked against
let bodyBytes = 0;

async function withRetry<T>(what: string, f: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await f();
    } catch (err) {
      if (!isYachayError(err, 'YCH_ERR_HUB_UNREACHABLE')) throw err;
      failures++;
      say({ event: 'retry', what, message: (err as Error).message });
      await sleep(job.retryMs ?? 500);
    }
  }
}

try {
  let list = job.blobs ?? [];
  if (job.lesson) {
    const { id, publicPem } = job.lesson;
    const m = await withRetry('manifest', () => fetchBytes(job.origin + originPath.manifest(id), { idleMs: job.idleMs }));
    const s = await withRetry('signature', () => fetchBytes(job.origin + originPath.signature(id), { idleMs: job.idleMs }));
    const manifest = verifyManifest(m.body, s.body.toString('utf8').trim(), publicPem, originPath.manifest(id));
    fetched += m.body.length + s.body.length;
    list = await missingBlobs(manifest, blobs);
    say({ event: 'manifest', files: manifest.files.length, missing: list.length, bytes: list.reduce((n, f) => n + f.size, 0) });
  }
  const queue = [...list];
  const worker = async (): Promise<void> => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      const blob = f;
      const r = await withRetry(blob.sha256, () => fetchBlob({
        url: job.origin + originPath.blob(blob.sha256), dest: blobs.path(blob.sha256), sha256: blob.sha256, size: blob.size,
        bucket, idleMs: job.idleMs, onBytes: (n) => { bodyBytes += n; },
      }));
      fetched += r.fetched;
      if (r.resumed) resumed++;
      say({ event: 'blob', sha256: blob.sha256, fetched: r.fetched, resumed: r.resumed });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, job.concurrency ?? 1) }, worker));
  say({ event: 'end', ok: true, fetched, bodyBytes, failures, resumed, seconds: (Date.now() - started) / 1000 });
} catch (err) {
  say({ event: 'end', ok: false, code: (err as { code?: string }).code, message: (err as Error).message, fetched, bodyBytes, failures });
  process.exitCode = 1;
}
