import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { clearJump, refineCut, refineCuts } from '../../daemon/optimize/cuts.js';
import type { Shot, ShotClass } from '../../daemon/optimize/shots.js';

// A cut the 5 fps analysis reports at 1.4 s lies anywhere near it; the source frame where the
// picture changes is what the encoder needs (its keyframe, and the frame it keeps before it).
function shot(index: number, start: number, end: number, cls: ShotClass): Shot {
  return { index, start, end, cls, video: { diff: 0, diffP90: 0, ti: 0, si: 0, edges: 0, edgeGrowth: 0 }, audio: { speech: 1, music: 0, silence: 0, kind: 'speech' } };
}

/** `parts` joined at 30 fps, 320x180, no audio: each a lavfi source. */
function clip(dir: string, name: string, parts: string[]): string {
  const out = join(dir, `${name}.mp4`);
  const graph = parts.map((p, i) => `${p}[p${i}]`).join(';') + `;${parts.map((_, i) => `[p${i}]`).join('')}concat=n=${parts.length}:v=1:a=0,format=yuv420p[v]`;
  const res = spawnSync('ffmpeg', ['-v', 'error', '-y', '-filter_complex', graph, '-map', '[v]', '-c:v', 'libx264', '-g', '60', '-qp', '18', out], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(res.stderr);
  return out;
}

const opts = { analysisFps: 5, baseFps: 30 };
/** a still picture exactly `frames` frames long */
const still = (c: string) => (frames: number): string => `color=c=${c}:s=320x180:r=30,trim=end_frame=${frames},setpts=PTS-STARTPTS`;
const dark = still('0x303030');
const light = still('0xd0d0d0');

t.test('a hard cut one or five frames from where the analysis saw it moves onto its frame', async (t) => {
  const dir = t.testdir();
  // dark for 41 frames (0–1.333 s), light from frame 41 = 1.367 s
  const early = clip(dir, 'early', [dark(41), light(49)]);
  t.equal(await refineCut(early, 1.4, opts), 1.367, 'cut one frame before the analysis frame');
  // a cut at frame 37 = 1.233 s, reported at 1.4 (the analysis frame after it)
  const late = clip(dir, 'late', [dark(37), light(53)]);
  t.equal(await refineCut(late, 1.4, opts), 1.233, 'cut five frames before');
  // and one frame after it (ffmpeg's fps filter rounds to the nearest source frame)
  const after = clip(dir, 'after', [dark(43), light(47)]);
  t.equal(await refineCut(after, 1.4, opts), 1.433, 'cut one frame after');

  const { shots, moved } = await refineCuts(early, [shot(0, 0, 1.4, 'slide'), shot(1, 1.4, 3, 'slide')], opts);
  t.equal(moved, 1);
  t.same(shots.map((s) => [s.start, s.end]), [[0, 1.367], [1.367, 3]], 'the shot before ends where the next starts');
});

t.test('no single clear jump (a fade, or motion on both sides): the analysis time stays', async (t) => {
  const dir = t.testdir();
  const fade = clip(dir, 'fade', ['color=c=0x303030:s=320x180:r=30:d=3,fade=t=out:st=1.2:d=0.4:c=0xd0d0d0']);
  t.equal(await refineCut(fade, 1.4, opts), undefined);
  const moving = clip(dir, 'moving', ['testsrc2=s=320x180:r=30:d=3']);
  t.equal(await refineCut(moving, 1.4, opts), undefined);
  const { shots, moved } = await refineCuts(moving, [shot(0, 0, 1.4, 'motion'), shot(1, 1.4, 3, 'motion')], opts);
  t.equal(moved, 0);
  t.same(shots.map((s) => s.start), [0, 1.4]);
});

t.test('clearJump wants one jump well above the rest', async (t) => {
  t.equal(clearJump([0, 0, 104, 11, 17]), 2);
  t.equal(clearJump([0.1, 0.2, 3, 0.1]), -1, 'too small to be a cut');
  t.equal(clearJump([12, 14, 13, 30]), -1, 'motion on both sides: not 2.5 times the rest');
  t.equal(clearJump([]), -1);
});
