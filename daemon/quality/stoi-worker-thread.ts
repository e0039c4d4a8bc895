import { closeSync, openSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { readPcmSync, type PcmFile } from './audio.js';
import { stoiOfLesson, type PcmReader } from './stoi.js';
import type { StoiJob, StoiReply } from './stoi-worker.js';

// The body of the STOI worker (stoi-worker.ts owns the thread): blocking reads are fine here,
// this thread has nothing else to serve.

function reader(f: PcmFile, fd: number): PcmReader {
  return { length: f.samples, read: (start, count) => readPcmSync(fd, f, start, count) };
}

const job = workerData as StoiJob;
const fds: number[] = [];
let reply: StoiReply;
try {
  const c = openSync(job.clean.path, 'r'); fds.push(c);
  const d = openSync(job.degraded.path, 'r'); fds.push(d);
  const r = stoiOfLesson(reader(job.clean, c), reader(job.degraded, d), job.clean.rate, job);
  reply = { ok: true, ...r };
} catch (err) {
  const e = err as Error;
  reply = { ok: false, name: e.name, message: e.message };
} finally {
  for (const fd of fds) closeSync(fd);
}
parentPort!.postMessage(reply);
