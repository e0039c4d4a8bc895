import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../daemon/media/run.js';

// An AV1 encode started by a box running as root must not take real-time priority: SVT-AV1
// asks for SCHED_FIFO 99 on every thread when it can, and those threads then starve the box's
// event loop (the class's /health and segments) and every other job on the 2 cores.

/** scheduling policy (field 41 of /proc/PID/task/TID/stat) of every thread of `pid` */
function policies(pid: number): number[] {
  const out: number[] = [];
  let tids: string[];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      out.push(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38]));
    } catch { /* thread ended */ }
  }
  return out;
}

function children(token: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(token)) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

t.test('an SVT-AV1 encode run by a root box keeps normal priority', { skip: process.getuid?.() !== 0 && 'only root can be given real-time priority' }, async (t) => {
  const out = join(t.testdir(), 'priority-probe.mkv');
  const done = run('ffmpeg', ['-v', 'warning', '-nostdin', '-y', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30:d=4',
    '-c:v', 'libsvtav1', '-preset', '10', '-crf', '40', out]);
  const seen = new Map<number, number>();
  let ended = false;
  void done.finally(() => { ended = true; }).catch(() => undefined);
  while (!ended) {
    for (const pid of children(out)) for (const p of policies(pid)) seen.set(p, (seen.get(p) ?? 0) + 1);
    await new Promise((r) => setTimeout(r, 50));
  }
  const res = await done;
  t.ok((seen.get(0) ?? 0) > 0, `encoder threads sampled at normal priority (${[...seen].map(([p, n]) => `policy ${p}: ${n}`).join(', ')})`);
  t.equal((seen.get(1) ?? 0) + (seen.get(2) ?? 0), 0, 'no thread ran SCHED_FIFO or SCHED_RR');
  t.match(res.stderr, /thread priority/i, 'the encoder said it could not raise its threads');
});
