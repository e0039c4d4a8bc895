import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeClip } from '../helpers/media.js';
import { encode, headerQp } from '../../daemon/optimize/encode.js';
import { keyframeTimes, withMoreBits } from '../../daemon/optimize/plan.js';
import type { Plan } from '../../daemon/optimize/plan.js';
import { changedShots, segmentSpans, segmentsCovering, spliceSegments } from '../../daemon/optimize/splice.js';
import { ssimWindow } from '../../daemon/quality/ssim.js';
import { readInit } from '../../daemon/optimize/fmp4.js';
import { verify } from '../../daemon/optimize/verify.js';
import { hlsWindow } from '../../daemon/quality/hls-window.js';

// A missed floor re-encodes only the segments that show the missed shot: the other files of
// the rendition stay byte for byte, and the result plays through ffmpeg's HLS reader (the
// download remux, verify) with every frame where it belongs.

function lecturePlan(src: string): Plan {
  const cls = ['slide', 'motion', 'talking_head', 'motion', 'slide'] as const;
  const fps = { slide: 1, motion: 6, talking_head: 15 } as const;
  const qp = { slide: 31, motion: 39, talking_head: 37 } as const;
  const shots = cls.map((c, i) => ({ index: i, start: i * 4, end: i * 4 + 4, cls: c, audio: 'silence' as const, reason: 'test' }));
  return {
    version: 1, input: src, duration: 20, baseFps: 30, segmentSeconds: 2, shots,
    // a keyframe every 2 s in the moving shots (every two 1 s segments), so each 4 s shot spans two segments
    keyframes: keyframeTimes(shots, 1),
    renditions: [{ id: 'v0', label: 'test', effort: 'max', width: 320, height: 180, shots: cls.map((c) => ({ fps: fps[c], qp: qp[c] })) }],
  };
}

interface Packet { pts: number; dts: number; flags: string }
function packets(playlist: string): Packet[] {
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts,dts,flags', '-of', 'csv=p=0', playlist], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim().split('\n').map((l) => { const [pts, dts, flags] = l.split(','); return { pts: Number(pts), dts: Number(dts), flags: flags ?? '' }; });
}

const files = (dir: string): string[] => readdirSync(dir).sort();

t.test('re-encoding one shot replaces only its segments, which play in place', async (t) => {
  const dir = t.testdir();
  const src = makeClip(dir, 'src', { seconds: 20, width: 640, height: 360, audio: false });
  const plan = lecturePlan(src);
  const pkg = join(dir, 'pkg');
  await encode(plan, src, pkg, { preset: 'veryfast', threads: 2 });
  const before = join(dir, 'before');
  cpSync(pkg, before, { recursive: true });

  // the same plan first: every frame must come back at the same time
  const { spans } = await segmentSpans(join(pkg, 'v0'), plan, 'v0');
  t.ok(spans.length >= 8, `${spans.length} segments`);
  const same = [2, 3];
  await spliceSegments(plan, plan, src, pkg, 'v0', same, { preset: 'veryfast', threads: 2, headerQp: headerQp(plan.renditions[0]!), keepDir: join(dir, 'keep0'), replaced: [] });
  t.same(packets(join(pkg, 'v0', 'index.m3u8')).map((p) => p.pts), packets(join(before, 'v0', 'index.m3u8')).map((p) => p.pts),
    'the same plan spliced: every frame keeps its presentation time');
  cpSync(before, pkg, { recursive: true });

  // shot 1 (motion, 4–8 s) gets more frames and a finer quantiser
  const next = withMoreBits(plan, 'v0', [1]);
  const changed = changedShots(plan, next, 'v0');
  t.same(changed.map((c) => c.index), [1], 'only shot 1 changed');
  const indices = segmentsCovering(spans, changed);
  t.ok(indices.length >= 2 && indices.length < spans.length / 2, `segments ${indices.join(',')} of ${spans.length}`);
  const replaced: string[] = [];
  await spliceSegments(plan, next, src, pkg, 'v0', indices, { preset: 'veryfast', threads: 2, headerQp: headerQp(plan.renditions[0]!), keepDir: join(dir, 'keep'), replaced });
  t.same(replaced, indices.map((i) => join('v0', spans[i]!.file)), 'the covering segments were replaced');
  t.same(files(join(pkg, 'v0')), files(join(before, 'v0')), 'no file added or removed');
  for (const f of files(join(pkg, 'v0'))) {
    const same = readFileSync(join(pkg, 'v0', f)).equals(readFileSync(join(before, 'v0', f)));
    if (replaced.includes(join('v0', f))) t.notOk(same, `${f} was re-encoded`);
    else t.ok(same, `${f} is byte-identical`);
  }
  for (const rel of replaced) t.ok(readFileSync(join(dir, 'keep', rel)).equals(readFileSync(join(before, rel))), `the old ${rel} was kept aside`);

  // ffmpeg's reader (the download remux and the quality checks) drops no frame and keeps order
  const after = packets(join(pkg, 'v0', 'index.m3u8'));
  const old = packets(join(before, 'v0', 'index.m3u8'));
  t.equal(after.filter((p) => p.flags.includes('D')).length, 0, 'no packet discarded');
  t.ok(after.every((p, i) => i === 0 || p.dts > after[i - 1]!.dts), 'decode times increase through the splices');
  // ffprobe gives HLS packet times in the track's timescale
  const tb = 1 / readInit(readFileSync(join(pkg, 'v0', 'init.mp4'))).timescale;
  const secs = (ps: Packet[]): number[] => ps.map((p) => p.pts * tb).sort((a, b) => a - b);
  const outside = (x: number): boolean => x < 4 || x >= 8.1;
  t.same(secs(after).filter(outside), secs(old).filter(outside), 'every frame outside the shot is where it was');
  const n0 = secs(old).filter((x) => !outside(x)).length; const n1 = secs(after).filter((x) => !outside(x)).length;
  t.ok(n1 > n0 * 1.4, `the shot has more frames now: ${n0} → ${n1}`);

  // the quality window reader sees what the whole playlist shows
  const o = { start: 4.5, duration: 3, width: 320, height: 180, fps: 30 };
  const whole = await ssimWindow(src, join(pkg, 'v0', 'index.m3u8'), o);
  const w = await hlsWindow(join(pkg, 'v0', 'index.m3u8'), 4.5, 7.5);
  t.ok(w, 'a window of the spliced rendition');
  const win = await ssimWindow(src, w!.path, o);
  await w!.dispose();
  t.ok(Math.abs(win.all - whole.all) < 1e-4 || win.all === whole.all, `SSIM ${win.all} through the window, ${whole.all} through the playlist`);
  const oldSsim = await ssimWindow(src, join(before, 'v0', 'index.m3u8'), o);
  t.ok(whole.all > oldSsim.all, `more bits measured better: ${oldSsim.all} → ${whole.all}`);

  // and a download remux of the whole rendition keeps every frame
  const mp4 = join(dir, 'dl.mp4');
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-allowed_extensions', 'ALL', '-i', join(pkg, 'v0', 'index.m3u8'), '-c', 'copy', mp4], { encoding: 'utf8' });
  t.equal(r.status, 0, `remux ${r.stderr}`);
  const c = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', mp4], { encoding: 'utf8' });
  t.equal(Number(c.stdout.trim()), after.length, `the download holds all ${after.length} frames`);
});

t.test('a stretch whose parameter sets differ from the init section is refused and nothing changes', async (t) => {
  const dir = t.testdir();
  const src = makeClip(dir, 'src', { seconds: 8, width: 640, height: 360, audio: false });
  const plan = { ...lecturePlan(src), duration: 8, shots: lecturePlan(src).shots.slice(0, 2) };
  plan.renditions = [{ ...plan.renditions[0]!, shots: plan.renditions[0]!.shots.slice(0, 2) }];
  plan.keyframes = keyframeTimes(plan.shots, 2);
  const pkg = join(dir, 'pkg');
  await encode(plan, src, pkg, { preset: 'veryfast', threads: 2 });
  const before = join(dir, 'before');
  cpSync(pkg, before, { recursive: true });
  const replaced: string[] = [];
  // another header QP writes another picture parameter set: the old init could not decode it
  await t.rejects(spliceSegments(plan, plan, src, pkg, 'v0', [1], { preset: 'veryfast', threads: 2, headerQp: headerQp(plan.renditions[0]!) - 5, keepDir: join(dir, 'keep'), replaced }),
    { code: 'YCH_ERR_ENCODE_REFUSED', message: /avcC/ });
  t.same(replaced, [], 'nothing replaced');
  for (const f of files(join(pkg, 'v0'))) t.ok(readFileSync(join(pkg, 'v0', f)).equals(readFileSync(join(before, 'v0', f))), `${f} unchanged`);
});

t.test('after a splice, verify measures only the shots in the replaced stretch and keeps the other checks', async (t) => {
  const dir = t.testdir();
  const src = makeClip(dir, 'src', { seconds: 20, width: 640, height: 360, audio: false });
  const plan = lecturePlan(src);
  const pkg = join(dir, 'pkg');
  await encode(plan, src, pkg, { preset: 'veryfast', threads: 2 });
  const floors = { ocrRatio: 0.97, ssimTalkingHead: 0.95, ssimMotion: 0.75, stoi: 0.96 };
  const first = await verify(plan, src, pkg, { floors, lang: 'eng', speech: [] });
  const measured = first.checks.filter((c) => c.kind === 'ssim').map((c) => c.shot);
  t.same(measured, [1, 2, 3], 'the picture shots are measured');
  const next = withMoreBits(plan, 'v0', [1]);
  const { spans } = await segmentSpans(join(pkg, 'v0'), plan, 'v0');
  const indices = segmentsCovering(spans, changedShots(plan, next, 'v0'));
  await spliceSegments(plan, next, src, pkg, 'v0', indices, { preset: 'veryfast', threads: 2, headerQp: headerQp(plan.renditions[0]!), keepDir: join(dir, 'keep'), replaced: [] });
  const changed = indices.map((i) => ({ start: spans[i]!.from, end: spans[i]!.to }));
  // marked values: a reused check is the old one, not a new measure
  const marked = first.checks.map((c) => (c.shot === 1 ? c : { ...c, value: 0.5, detail: 'kept' }));
  const again = await verify(next, src, pkg, { floors, lang: 'eng', speech: [], reuse: { checks: marked, changed, audio: false } });
  const byShot = new Map(again.checks.map((c) => [c.shot, c]));
  t.same([...byShot.keys()].sort(), [1, 2, 3], 'every check is in the report');
  t.equal(byShot.get(2)!.detail, 'kept', 'shot 2 (outside the replaced segments) was not measured again');
  t.equal(byShot.get(3)!.detail, 'kept', 'shot 3 neither');
  t.not(byShot.get(1)!.detail, 'kept', 'shot 1 was measured again');
  t.ok(byShot.get(1)!.value > first.checks.find((c) => c.shot === 1)!.value, `and measured better: ${byShot.get(1)!.value}`);
});
