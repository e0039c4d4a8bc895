import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeClip } from '../helpers/media.js';
import { jobsRig } from '../helpers/jobs.js';
import type { JobEvent } from '../../daemon/jobs/worker.js';

// A published lesson coded again with more quality ("Volver a codificar con más calidad"): the
// boost reaches the plan, and a re-encode that fails never takes the published lesson away.
// Real worker, SQLite, content store and ffmpeg (verify off, ultrafast: see helpers/jobs.ts).

function waiter(): { on: (e: JobEvent) => void; until: (id: number) => Promise<JobEvent> } {
  const list: JobEvent[] = [];
  let wake: Array<() => void> = [];
  return {
    on(e) { list.push(e); const w = wake; wake = []; for (const f of w) f(); },
    async until(id) {
      for (;;) {
        const hit = list.find((e) => e.id === id && (e.state === 'done' || e.state === 'dead'));
        if (hit) return hit;
        await new Promise<void>((r) => { wake.push(r); setTimeout(r, 200).unref(); });
      }
    },
  };
}

t.test('a boosted re-encode publishes over the old package; a failed one leaves the lesson ready', async (t) => {
  const dir = t.testdir();
  const clip = makeClip(dir, 'clase', { seconds: 3 });
  const ev = waiter();
  const r = jobsRig(join(dir, 'data'), { onEvent: ev.on, jobs: { backoffSeconds: 0.1, maxAttempts: 1 } });
  t.teardown(() => r.close());
  const lesson = r.lessons.create({ title: 'Fracciones', source: clip });
  await r.worker.start(new AbortController().signal);
  const first = r.queue.enqueue('optimize', { lessonId: lesson.id, source: clip });
  r.worker.wake();
  t.equal((await ev.until(first)).state, 'done');
  t.match(r.lessons.get(lesson.id), { status: 'ready', path: lesson.id, misses: [] }, 'met its floors (none measured): no misses');

  const boosted = r.queue.enqueue('optimize', { lessonId: lesson.id, source: clip, boost: 1 });
  r.worker.wake();
  t.equal((await ev.until(boosted)).state, 'done');
  const plan = JSON.parse(readFileSync(join(r.paths.store, lesson.id, 'plan.json'), 'utf8')) as { shots: Array<{ reason: string }> };
  t.ok(plan.shots.every((s) => /docente/.test(s.reason)), 'no misses known: every shot of the lowest rendition got more bits');
  t.match(JSON.parse(readFileSync(join(r.paths.store, lesson.id, 'report.json'), 'utf8')), { boost: { level: 1 } });
  t.match(r.lessons.report(lesson.id), { boost: 1 });

  // the recording was replaced by something that is not media: the re-encode dies at once
  const broken = join(dir, 'roto.mp4');
  writeFileSync(broken, 'not a video\n'.repeat(100));
  const failing = r.queue.enqueue('optimize', { lessonId: lesson.id, source: broken, boost: 1 });
  r.worker.wake();
  t.equal((await ev.until(failing)).state, 'dead');
  const after = r.lessons.get(lesson.id)!;
  t.equal(after.status, 'ready', 'still ready: the published package stays');
  t.match(after.error, /re-encode failed.*YCH_ERR_INPUT_NOT_MEDIA/);
  t.ok(existsSync(join(r.paths.store, lesson.id, 'master.m3u8')), 'the package is still there');
});
