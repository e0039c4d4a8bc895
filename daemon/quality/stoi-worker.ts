import { Worker } from 'node:worker_threads';
import { YachayError } from '../errors.js';
import type { PcmFile } from './audio.js';
import type { LessonStoi, LessonStoiOptions } from './stoi.js';

/**
 * The speech measure of a whole lesson, in a worker thread: STOI costs ~1.8 s per 10 minutes
 * of audio here and tens of seconds for a lesson on a Pi, time in which the box's one event
 * loop would not answer a single phone. The worker reads both decoded tracks from their files
 * window by window (stoiOfLesson), so neither is ever whole in memory; it ends with the job,
 * and an abort terminates it on the spot.
 */
export interface StoiJob extends LessonStoiOptions {
  clean: PcmFile;
  degraded: PcmFile;
}

export type StoiReply = ({ ok: true } & LessonStoi) | { ok: false; name: string; message: string };

const BOOT = new URL('./stoi-worker-boot.mjs', import.meta.url);
/** the windows need a few MB; this only stops a bug from eating the box's memory */
const HEAP_MB = 128;

export function stoiInWorker(job: StoiJob, signal?: AbortSignal): Promise<LessonStoi> {
  if (job.clean.rate !== job.degraded.rate) {
    return Promise.reject(new YachayError('YCH_ERR_USAGE', `STOI: both tracks must share a rate (${job.clean.rate} vs ${job.degraded.rate} Hz)`));
  }
  if (signal?.aborted) return Promise.reject(new YachayError('YCH_ERR_ABORTED', 'speech measure not started: aborted'));
  return new Promise((resolve, reject) => {
    const worker = new Worker(BOOT, { workerData: job, resourceLimits: { maxOldGenerationSizeMb: HEAP_MB } });
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      fn();
    };
    const onAbort = (): void => finish(() => reject(new YachayError('YCH_ERR_ABORTED', 'speech measure stopped: aborted')));
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (m: StoiReply) => finish(() => {
      if (m.ok) resolve({ value: m.value, lag: m.lag, windows: m.windows });
      // too little speech stays the RangeError stoi() throws on the main thread
      else if (m.name === 'RangeError') reject(new RangeError(m.message));
      else reject(new YachayError('YCH_ERR_IO', `speech measure failed reading ${job.clean.path} / ${job.degraded.path}: ${m.message}`));
    }));
    worker.once('error', (e) => finish(() => reject(new YachayError('YCH_ERR_IO', `speech measure worker failed: ${e.message}`, { cause: e }))));
    worker.once('exit', (code) => finish(() => reject(new YachayError('YCH_ERR_IO', `speech measure worker exited (code ${code}) without an answer`))));
  });
}
