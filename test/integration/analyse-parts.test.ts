import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { analyseVideo, videoParts, type VideoFeatures } from '../../daemon/optimize/analyse.js';
import { probe } from '../../daemon/optimize/probe.js';
import { loadNative } from '../../daemon/analysis/native.js';

// A long lesson's analysis decode runs as a few decodes side by side, each over its own stretch
// of the video: what the plan sees must be what one decode gives, frame for frame.

t.test('stretches fall on whole seconds, one per core, never shorter than a second', async (t) => {
  t.same(videoParts(3600, 5, 2, 2), [{ start: 0, end: 1800 }, { start: 1800 }]);
  t.same(videoParts(13.013, 5, 2, 3), [{ start: 0, end: 4 }, { start: 4, end: 9 }, { start: 9 }]);
  t.same(videoParts(3600, 5, undefined, 16).length, 4, 'at most four');
  t.same(videoParts(3600, 5, 2, 1), [{ start: 0 }], 'one core: one decode');
  t.same(videoParts(3600, 2.5, 2, 2), [{ start: 0 }], 'a rate whose frames miss whole seconds keeps one decode');
  t.same(videoParts(3600, 5, 2.5, 2), [{ start: 0 }], 'so does such a tap');
  t.same(videoParts(1.5, 5, 2, 4), [{ start: 0 }], 'a clip under two seconds is one stretch');
});

t.test('three decodes give the features and tap frames of one, across cuts and on an NTSC rate', async (t) => {
  const dir = t.testdir();
  const clip = join(dir, 'ntsc.mp4');
  // 29.97 fps with B-frames and grain, three pictures: frames never sit on whole seconds, the
  // decode skips B-frames, and a part boundary (4 s) falls inside the moving test pattern
  const res = spawnSync('ffmpeg', ['-v', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30000/1001:duration=5',
    '-f', 'lavfi', '-i', 'mandelbrot=size=640x360:rate=30000/1001',
    '-f', 'lavfi', '-i', 'smptehdbars=size=640x360:rate=30000/1001:duration=4',
    '-filter_complex', '[1]trim=duration=4,setpts=PTS-STARTPTS[m];[0][m][2]concat=n=3:v=1:a=0,noise=alls=8:allf=t[v]',
    '-map', '[v]', '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '3', '-g', '120', clip], { encoding: 'utf8' });
  t.equal(res.status, 0, res.stderr);
  const info = await probe(clip);
  const kernels = loadNative();
  const run = async (parts: number): Promise<{ v: VideoFeatures; taps: Map<number, Buffer>; progress: number }> => {
    const taps = new Map<number, Buffer>();
    let progress = 0;
    const v = await analyseVideo(info, kernels, 5, {
      parts, onProgress: (s) => { progress = s; },
      tap: { fps: 2, filters: 'scale=32:32,format=gray', frameBytes: 1024, onFrame: (at, frame) => { taps.set(Math.round(at * 1000), Buffer.from(frame)); } },
    });
    return { v, taps, progress };
  };
  const one = await run(1);
  const three = await run(3);
  t.equal(one.v.diff.length, 65, '13 s at 5 fps');
  for (const k of ['diff', 'si', 'ti', 'edges', 'luma', 'lumaStd'] as const) {
    t.same(Array.from(three.v[k]), Array.from(one.v[k]), `${k}: the same in every frame`);
  }
  // the first frame of the 4 s stretch is compared with the last of the one before it
  t.ok(three.v.diff[20]! > 1, `diff across the boundary is the picture's change (${three.v.diff[20]})`);
  t.same([...three.taps.keys()].sort((a, b) => a - b), [...one.taps.keys()].sort((a, b) => a - b), 'tap frames at the same times');
  t.ok([...one.taps].every(([at, f]) => three.taps.get(at)!.equals(f)), 'and with the same pictures');
  t.equal(three.progress, one.progress, 'progress reaches the end');
});

t.test('a video that ends before its sound: the stretches past its end add no frames', async (t) => {
  const dir = t.testdir();
  const clip = join(dir, 'short-video.mp4');
  // 6 s of picture, 12 s of sound: the container lasts 12 s, stretches start at 0, 4 and 8 s
  const res = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25:duration=6',
    '-f', 'lavfi', '-i', 'sine=frequency=440:duration=12', '-c:v', 'libx264', '-preset', 'veryfast', '-c:a', 'aac', clip], { encoding: 'utf8' });
  t.equal(res.status, 0, res.stderr);
  const info = await probe(clip);
  t.ok(info.duration > 11.5, `the container lasts the sound's 12 s (${info.duration})`);
  const kernels = loadNative();
  const one = await analyseVideo(info, kernels, 5, { parts: 1 });
  const three = await analyseVideo(info, kernels, 5, { parts: 3 });
  t.equal(three.diff.length, one.diff.length, `as many frames as one decode (${one.diff.length})`);
  t.same(Array.from(three.luma), Array.from(one.luma), 'the same frames');
});

t.test('aborting a job stops every stretch, and a failing stretch stops the others', async (t) => {
  const dir = t.testdir();
  const clip = join(dir, 'minute.mp4');
  const res = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30:duration=60',
    '-c:v', 'libx264', '-preset', 'ultrafast', clip], { encoding: 'utf8' });
  t.equal(res.status, 0, res.stderr);
  const info = await probe(clip);
  const kernels = loadNative();
  const ours = (): string[] => {
    try { return execFileSync('pgrep', ['-P', String(process.pid), 'ffmpeg'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean); } catch { return []; }
  };
  const ac = new AbortController();
  const job = analyseVideo(info, kernels, 5, { parts: 3, signal: ac.signal, onProgress: () => ac.abort(new Error('the teacher cancelled')) });
  await t.rejects(job, 'the analysis ends with the abort');
  t.same(ours(), [], 'no decoder left running');
  // a tap that throws on the second stretch's first frame fails that stretch alone
  const failing = analyseVideo(info, kernels, 5, {
    parts: 3,
    tap: { fps: 2, filters: 'scale=32:32,format=gray', frameBytes: 1024, onFrame: (_t, _f, part) => { if (part === 1) throw new Error('stretch 1 broke'); } },
  });
  await t.rejects(failing, /stretch 1 broke/, "the stretch's own error, not an abort");
  t.same(ours(), [], 'the other stretches stopped too');
});
