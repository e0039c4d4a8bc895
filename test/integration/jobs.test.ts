import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeClip } from '../helpers/media.js';
import { ROOT } from '../helpers/cli.js';
import { jobsRig } from '../helpers/jobs.js';
import type { JobEvent } from '../../daemon/jobs/worker.js';
import { LEASE_EXPIRED } from '../../daemon/jobs/queue.js';
import { JobQueue } from '../../daemon/jobs/queue.js';
import type { Job } from '../../daemon/jobs/queue.js';
import { WorkerService } from '../../daemon/jobs/worker.js';
import { openDb } from '../../daemon/db/db.js';
import { createLogger } from '../../daemon/log.js';
import { dataPaths } from '../../daemon/paths.js';

// The worker on real SQLite files and real ffmpeg. Fast settings (no verify, ultrafast): the
// quality floors are optimize.test.ts's business; here it is the queue's promises that count.
const RUNNER = fileURLToPath(new URL('../helpers/worker-runner.ts', import.meta.url));
const media = t.testdir();
// ~10 s so that a kill lands in the middle of the encode
const long = makeClip(media, 'clase-larga', { seconds: 10 });

type T = Parameters<Parameters<typeof t.test>[0]>[0];

function events(): { list: JobEvent[]; on: (e: JobEvent) => void; until: (pred: (e: JobEvent) => boolean, ms?: number) => Promise<JobEvent> } {
  const list: JobEvent[] = [];
  let waiters: Array<() => void> = [];
  return {
    list,
    on(e) { list.push(e); const w = waiters; waiters = []; for (const f of w) f(); },
    async until(pred, ms = 60_000) {
      const t0 = Date.now();
      for (;;) {
        const hit = list.find(pred);
        if (hit) return hit;
        if (Date.now() - t0 > ms) throw new Error(`no matching job event within ${ms} ms; saw ${JSON.stringify(list.slice(-5))}`);
        await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 200).unref(); });
      }
    },
  };
}

function storeEntries(dataDir: string): string[] {
  const store = dataPaths(dataDir).store;
  return existsSync(store) ? readdirSync(store) : [];
}

/** pids of processes whose command line mentions `needle` (Linux /proc) */
function processesUsing(needle: string): number[] {
  if (!existsSync('/proc/self/cmdline')) return [];
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try { if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) pids.push(Number(d)); } catch { /* gone */ }
  }
  return pids;
}

function rig(t: T, dataDir: string, ev: ReturnType<typeof events>, leaseSeconds = 60): ReturnType<typeof jobsRig> {
  const r = jobsRig(dataDir, { onEvent: ev.on, jobs: { leaseSeconds, backoffSeconds: 0.1 } });
  t.teardown(() => r.close());
  return r;
}

// The worker's own rules with small in-test handlers (no ffmpeg): retry, dead letter, lost lease.
function plainWorker(t: T, handlers: ConstructorParameters<typeof WorkerService>[0]['handlers'], leaseSeconds: number): { queue: JobQueue; worker: WorkerService; ev: ReturnType<typeof events>; db: ReturnType<typeof openDb> } {
  const db = openDb(join(t.testdir(), 'y.db'));
  const queue = new JobQueue(db);
  const ev = events();
  const worker = new WorkerService({
    queue, handlers, log: createLogger('silent'), onEvent: ev.on, pollMs: 50,
    cfg: { workers: 2, leaseSeconds, maxAttempts: 3, backoffSeconds: 0.05 },
  });
  t.teardown(async () => { await worker.stop(); db.close(); });
  return { queue, worker, ev, db };
}

t.test('a failing job is retried with backoff, then succeeds; unknown kinds are dead at once', async (t) => {
  const requeued: Job[] = [];
  let runs = 0;
  const { queue, worker, ev } = plainWorker(t, {
    flaky: {
      async run(_job, ctx) { runs++; ctx.progress(0.5, 'half'); if (runs < 3) throw new Error(`flaky ${runs}`); },
      requeued(job) { requeued.push(job); },
    },
  }, 30);
  const id = queue.enqueue('flaky', { lessonId: 'l-1' });
  const other = queue.enqueue('nobody-handles-this', {});
  await worker.start(new AbortController().signal);
  t.equal((await ev.until((e) => e.id === id && e.state === 'done')).lessonId, 'l-1');
  const job = queue.get(id)!;
  t.equal(job.attempts, 2);
  t.equal(job.lastError, 'flaky 2');
  t.same(requeued.map((j) => [j.attempts, j.lastError]), [[1, 'flaky 1'], [2, 'flaky 2']]);
  t.ok(requeued[1]!.runAfter - requeued[1]!.updatedAt >= 100, 'second retry waits twice the backoff');
  t.ok(ev.list.some((e) => e.id === id && e.stage === 'half' && e.progress === 0.5), 'progress forwarded');
  await ev.until((e) => e.id === other && e.state === 'dead');
  t.match(queue.get(other)!.lastError, /no handler for job kind "nobody-handles-this"/);
  t.equal(queue.get(other)!.attempts, 1);
  t.ok(worker.healthy());
});

t.test('a worker that loses its lease aborts the run and leaves the job to its new owner', async (t) => {
  let sawAbort: unknown;
  let started = false;
  const { queue, worker, db } = plainWorker(t, {
    slow: {
      run: (_job, ctx) => new Promise<void>((_resolve, reject) => {
        started = true;
        ctx.signal.addEventListener('abort', () => { sawAbort = ctx.signal.reason; reject(new Error('aborted')); });
      }),
    },
  }, 0.3);
  const id = queue.enqueue('slow', null);
  await worker.start(new AbortController().signal);
  while (!started) await new Promise((r) => setTimeout(r, 20));
  // another worker took it over (as after a long stall of this process)
  db.prepare(`UPDATE jobs SET leased_by = 'thief' WHERE id = ?`).run(id);
  const t0 = Date.now();
  while (!sawAbort && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
  t.match(String(sawAbort), /lease lost/);
  await new Promise((r) => setTimeout(r, 100));
  const job = queue.get(id)!;
  t.equal(job.state, 'leased');
  t.equal(job.leasedBy, 'thief', 'untouched: not failed, not released');
  t.equal(job.attempts, 0);
  t.same(worker.runningJobs(), []);
});

t.test('the worker optimizes a lesson: ready, package in the store', async (t) => {
  const dir = t.testdir();
  const clip = makeClip(dir, 'clase', { seconds: 3 });
  const data = join(dir, 'data');
  const ev = events();
  const r = rig(t, data, ev);
  const lesson = r.lessons.create({ title: 'Fotosíntesis: la luz', source: clip });
  t.match(lesson.id, /^fotosintesis-la-luz-[a-z0-9]{6}$/);
  const id = r.queue.enqueue('optimize', { lessonId: lesson.id, source: clip });
  await r.worker.start(new AbortController().signal);
  r.worker.wake();
  const end = await ev.until((e) => e.id === id && (e.state === 'done' || e.state === 'dead'));
  t.equal(end.state, 'done', JSON.stringify(r.queue.get(id)));
  t.equal(end.lessonId, lesson.id);

  const ready = r.lessons.get(lesson.id)!;
  t.equal(ready.status, 'ready');
  t.equal(ready.path, lesson.id);
  t.ok(Math.abs(ready.durationS! - 3) < 0.5, `duration ${ready.durationS}`);
  t.ok(ready.renditions!.length >= 2, 'video and audio renditions');
  for (const rd of ready.renditions!) {
    t.ok(rd.bytes > 0 && rd.kbps > 0, `${rd.id}: ${rd.bytes} bytes, ${rd.kbps} kbps`);
    t.ok(existsSync(join(r.paths.store, lesson.id, rd.playlist)), `${rd.playlist} exists`);
  }
  t.ok(existsSync(join(r.paths.store, lesson.id, 'master.m3u8')), 'master.m3u8 published');
  t.same(storeEntries(data), [lesson.id], 'no temp folder left');
  const report = r.lessons.report(lesson.id) as { attempts: number; shots: unknown[] };
  t.equal(report.attempts, 1);
  t.ok(report.shots.length >= 1);

  const progress = ev.list.filter((e) => e.id === id && e.progress !== undefined).map((e) => e.progress!);
  t.ok(progress.length > 3, `${progress.length} progress events`);
  t.same(progress, [...progress].sort((a, b) => a - b), 'progress only goes forward');
  t.equal(progress.at(-1), 1);
  t.ok(ev.list.some((e) => e.stage === 'encode'), 'stages named');
  t.same(r.queue.stats(), { queued: 0, leased: 0, done: 1, dead: 0 });
  t.same(r.lessons.list({ q: 'FOTOSINTESIS luz' }).map((l) => l.id), [lesson.id], 'found without accents');
  t.same(r.lessons.list({ q: 'química' }), []);
});

t.test('a file that is not media goes to the dead letter at once; the lesson shows why', async (t) => {
  const dir = t.testdir();
  const notes = join(dir, 'notas.mp4');
  writeFileSync(notes, 'these are my notes, not a video\n'.repeat(50));
  const ev = events();
  const r = rig(t, join(dir, 'data'), ev);
  const lesson = r.lessons.create({ title: 'Notas', source: notes });
  const id = r.queue.enqueue('optimize', { lessonId: lesson.id, source: notes }, { maxAttempts: 3 });
  await r.worker.start(new AbortController().signal);
  const end = await ev.until((e) => e.id === id && (e.state === 'done' || e.state === 'dead'));
  t.equal(end.state, 'dead');
  const job = r.queue.get(id)!;
  t.equal(job.attempts, 1, 'no retry can make it a video');
  t.match(job.lastError, /YCH_ERR_INPUT_NOT_MEDIA/);
  const failed = r.lessons.get(lesson.id)!;
  t.equal(failed.status, 'failed');
  t.match(failed.error, /YCH_ERR_INPUT_NOT_MEDIA/);
  t.same(storeEntries(join(dir, 'data')), []);
});

t.test('stop() aborts the encode and hands the job back without counting an attempt', async (t) => {
  const dir = t.testdir();
  const data = join(dir, 'data');
  const ev = events();
  const r = rig(t, data, ev);
  const lesson = r.lessons.create({ title: 'Clase larga', source: long });
  const id = r.queue.enqueue('optimize', { lessonId: lesson.id, source: long });
  await r.worker.start(new AbortController().signal);
  await ev.until((e) => e.id === id && e.stage === 'encode');
  t.same(r.worker.runningJobs(), [id]);
  const t0 = Date.now();
  await r.worker.stop();
  t.ok(Date.now() - t0 < 5000, `stopped in ${Date.now() - t0} ms`);
  const job = r.queue.get(id)!;
  t.equal(job.state, 'queued');
  t.equal(job.attempts, 0);
  t.equal(r.lessons.get(lesson.id)!.status, 'queued');
  t.same(storeEntries(data), [], 'nothing published, temp folder removed');
  t.same(processesUsing(r.paths.store), [], 'no ffmpeg left behind');
  t.equal(r.worker.healthy(), false);
});

t.test('kill -9 during the encode: nothing half published, and the next worker finishes the job', async (t) => {
  const dir = t.testdir();
  const data = join(dir, 'data');
  const ev = events();
  const r = rig(t, data, ev, 2);
  const lesson = r.lessons.create({ title: 'Clase interrumpida', source: long });
  const id = r.queue.enqueue('optimize', { lessonId: lesson.id, source: long });

  const tStart = Date.now();
  // a separate worker process, killed without warning once its encode runs
  const child = spawn(process.execPath, ['--import', 'tsx', RUNNER, data, '2'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<NodeJS.Signals | null>((res) => child.on('exit', (_code, sig) => res(sig)));
  const seen: JobEvent[] = [];
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`runner never reached the encode; stderr: ${stderr}`)), 60_000);
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const e = JSON.parse(buf.slice(0, nl)) as JobEvent;
        buf = buf.slice(nl + 1);
        seen.push(e);
        if (e.stage === 'encode' && (e.progress ?? 0) > 0.2) {
          child.kill('SIGKILL');
          clearTimeout(timer);
          resolve();
        }
      }
    });
    child.on('exit', () => { clearTimeout(timer); resolve(); });
  });
  t.equal(await exited, 'SIGKILL', 'killed, not finished');
  t.comment(`killed after ${Date.now() - tStart} ms, at ${seen.at(-1)?.stage} ${seen.at(-1)?.progress?.toFixed(2)}`);
  t.notOk(seen.some((e) => e.state === 'done'), 'the child did not finish first');

  const left = storeEntries(data);
  t.notOk(left.includes(lesson.id), 'nothing visible at store/<lessonId>');
  t.ok(left.length >= 1 && left.every((n) => n.startsWith(`.${lesson.id}.tmp-${child.pid}`)), `only the temp folder: ${left.join(', ')}`);
  const crashed = r.queue.get(id)!;
  t.equal(crashed.state, 'leased');
  t.equal(r.lessons.get(lesson.id)!.status, 'processing');
  // an orphaned ffmpeg dies on its next write to the dead parent's pipe
  const t0 = Date.now();
  while (processesUsing(r.paths.store).length && Date.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 100));
  t.same(processesUsing(r.paths.store), [], 'no ffmpeg outlives its worker');

  // a new worker (this process) takes the job over once the dead one's lease expires
  await r.worker.start(new AbortController().signal);
  const end = await ev.until((e) => e.id === id && (e.state === 'done' || e.state === 'dead'));
  t.equal(end.state, 'done');
  t.comment(`second run done after ${Date.now() - tStart} ms`);
  const job = r.queue.get(id)!;
  t.equal(job.attempts, 1, 'the lost run counts as an attempt');
  t.equal(job.lastError, LEASE_EXPIRED);
  const ready = r.lessons.get(lesson.id)!;
  t.equal(ready.status, 'ready');
  t.ok(existsSync(join(r.paths.store, lesson.id, 'master.m3u8')));
  t.same(storeEntries(data), [lesson.id], 'the stale temp folder was cleaned up');
});
