import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeClip } from '../helpers/media.js';
import { makePlan } from '../../daemon/optimize/plan.js';
import { encode, gateExpr, refusedPlan, simulateSelect } from '../../daemon/optimize/encode.js';
import { shotTree } from '../../daemon/media/expr.js';
import { run } from '../../daemon/media/run.js';
import type { Shot, ShotClass } from '../../daemon/optimize/shots.js';
import { probe } from '../../daemon/optimize/probe.js';
import { isPermanent } from '../../daemon/jobs/worker.js';

// A classroom hour holds hundreds of shots and a thousand pauses between sentences. ffmpeg 5.1
// refused the per-shot frame selection past 48 shots when it was one nested chain; these sizes
// are the issue's: 600 shots, 1,000 gate intervals, in one encode.
const CLASSES: ShotClass[] = ['slide', 'talking_head', 'motion', 'board'];
function shot(index: number, start: number, end: number): Shot {
  return { index, start, end, cls: CLASSES[index % 4]!, video: { diff: 0, diffP90: 0, ti: 0, si: 0, edges: 0, edgeGrowth: 0 }, audio: { speech: 1, music: 0, silence: 0, kind: 'speech' } };
}

t.test('600 shots and 1,000 silence intervals encode in one pass', async (t) => {
  const dir = t.testdir();
  const seconds = 240;
  const clip = makeClip(dir, 'src', { seconds, fps: 10, width: 320, height: 180 });
  const info = await probe(clip);
  const n = 600;
  const shots = Array.from({ length: n }, (_, i) => shot(i, (i * seconds) / n, ((i + 1) * seconds) / n));
  const plan = makePlan(info, shots, { segmentSeconds: 6 });
  const gate = Array.from({ length: 1000 }, (_, i) => ({ start: i * 0.24, end: i * 0.24 + 0.12 }));
  plan.audio = { ...plan.audio!, gate };
  const out = join(dir, 'pkg');
  await encode(plan, clip, out, { preset: 'ultrafast', threads: 2 });
  t.notOk(readdirSync(out).includes('.filter_complex.txt'), 'the graph file does not stay in the package');
  for (const r of plan.renditions) {
    const res = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames',
      '-of', 'csv=p=0', join(out, r.id, 'index.m3u8')], { encoding: 'utf8' });
    const kept = Number(res.stdout.trim().split('\n')[0]); const simulated = simulateSelect(plan, r).total;
    t.equal(kept, simulated, `${r.id}: ffmpeg kept ${kept} frames, the plan simulates ${simulated} (${res.stderr.trim()})`);
  }
  // the gate is applied: inside a 40 ms interval the decoded audio is digital silence, between
  // intervals the 440 Hz tone is there
  const pcm = spawnSync('ffmpeg', ['-v', 'error', '-allowed_extensions', 'ALL', '-i', join(out, 'a-aac', 'index.m3u8'),
    '-ac', '1', '-ar', '8000', '-f', 's16le', '-'], { maxBuffer: 64 << 20 });
  t.equal(pcm.status, 0);
  const s = new Int16Array(pcm.stdout.buffer, pcm.stdout.byteOffset, pcm.stdout.length >> 1);
  const rms = (from: number, to: number): number => {
    let acc = 0;
    for (let i = Math.round(from * 8000); i < Math.round(to * 8000); i++) acc += (s[i] ?? 0) ** 2;
    return Math.sqrt(acc / Math.max(1, Math.round((to - from) * 8000)));
  };
  // decoded fMP4 AAC starts with the encoder's 1,024 priming samples (no edit list); the volume
  // filter switches per audio frame (~21 ms): judge the middle of each span
  const priming = 1024 / plan.audio.aac.sampleRate;
  for (const k of [3, 500, 997]) {
    const a = k * 0.24 + priming;
    t.ok(rms(a + 0.035, a + 0.085) < 200, `inside gate interval ${k} the audio is silent (rms ${rms(a + 0.035, a + 0.085).toFixed(0)})`);
    t.ok(rms(a + 0.155, a + 0.205) > 2000, `after gate interval ${k} the tone is back (rms ${rms(a + 0.155, a + 0.205).toFixed(0)})`);
  }
});

t.test('per-shot choices nest by log2(shots), far below the 100 levels ffmpeg parses', async (t) => {
  const depth = (expr: string): number => {
    let d = 0; let max = 0;
    for (const c of expr) { if (c === '(') max = Math.max(max, ++d); else if (c === ')') d--; }
    return max;
  };
  const starts = Array.from({ length: 5000 }, (_, i) => i);
  const expr = shotTree(starts, (i) => `eq(t,${i})`);
  t.ok(depth(expr) <= 2 * Math.ceil(Math.log2(5000)) + 2, `5,000 shots nest ${depth(expr)} deep`);
  t.equal(gateExpr([{ start: 5, end: 6 }, { start: 1, end: 2 }, { start: 1.5, end: 3 }]),
    'if(lt(t,5.0000),between(t,1.000,3.000),between(t,5.000,6.000))', 'intervals are sorted and overlaps merged');
});

t.test('a filter graph ffmpeg refuses is a permanent failure, not a retry', async (t) => {
  const dir = t.testdir();
  const clip = makeClip(dir, 'src', { seconds: 1, audio: false });
  const err = await run('ffmpeg', ['-v', 'error', '-i', clip, '-vf', "select='if(lt(t,1),1'", '-f', 'null', '-']).then(() => undefined, (e: unknown) => e);
  t.ok(err, 'ffmpeg failed');
  const refused = refusedPlan(err);
  t.equal(refused?.code, 'YCH_ERR_ENCODE_REFUSED');
  t.ok(isPermanent(refused), 'the job queue does not retry it');
  const other = await run('ffmpeg', ['-v', 'error', '-i', join(dir, 'missing.mp4'), '-f', 'null', '-']).then(() => undefined, (e: unknown) => e);
  t.equal(refusedPlan(other), undefined, 'a missing file is not a refused plan');
});
