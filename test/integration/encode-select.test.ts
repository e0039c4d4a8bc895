import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { makeClip } from '../helpers/media.js';
import { makePlan } from '../../daemon/optimize/plan.js';
import { selectExpr, simulateSelect } from '../../daemon/optimize/encode.js';
import type { Shot, ShotClass } from '../../daemon/optimize/shots.js';
import { probe } from '../../daemon/optimize/probe.js';

// x264 zones are given in output frame numbers computed by simulateSelect(); if ffmpeg's select
// kept other frames, every shot would get its neighbour's quantiser. This pins the two together.
function shot(index: number, start: number, end: number, cls: ShotClass): Shot {
  return { index, start, end, cls, video: { diff: 0, diffP90: 0, ti: 0, si: 0, edges: 0, edgeGrowth: 0 }, audio: { speech: 1, music: 0, silence: 0, kind: 'speech' } };
}

t.test('ffmpeg keeps exactly the frames the plan simulates', async (t) => {
  const dir = t.testdir();
  const clip = makeClip(dir, 'src', { seconds: 9, fps: 30, audio: false });
  const info = await probe(clip);
  const plan = makePlan(info, [shot(0, 0, 3.2, 'slide'), shot(1, 3.2, 6.4, 'talking_head'), shot(2, 6.4, 9, 'motion')], { segmentSeconds: 6 });
  for (const r of plan.renditions) {
    const sim = simulateSelect(plan, r);
    const res = spawnSync('ffmpeg', ['-v', 'error', '-i', clip, '-vf', `fps=${plan.baseFps},select='${selectExpr(plan, r)}'`,
      '-fps_mode', 'vfr', '-f', 'framemd5', '-'], { encoding: 'utf8' });
    t.equal(res.status, 0, res.stderr);
    const pts = res.stdout.split('\n').filter((l) => /^\d/.test(l)).map((l) => Number(l.split(',')[2]));
    t.equal(pts.length, sim.total, `${r.id}: ${pts.length} frames kept, simulated ${sim.total}`);
    // the first frame of each shot sits at the shot start
    for (const [i, f] of sim.firstFrame.entries()) {
      t.ok(Math.abs(pts[f]! / 30 - Math.ceil(plan.shots[i]!.start * 30 - 1e-6) / 30) < 1e-6, `${r.id} shot ${i} starts on time`);
    }
  }
});
