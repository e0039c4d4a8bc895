import t from 'tap';
import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ffmpeg } from '../helpers/media.js';
import { makePlan } from '../../daemon/optimize/plan.js';
import type { Plan } from '../../daemon/optimize/plan.js';
import { encodeArgs, simulateSelect } from '../../daemon/optimize/encode.js';
import { run } from '../../daemon/media/run.js';
import { probe } from '../../daemon/optimize/probe.js';
import type { Shot, ShotClass } from '../../daemon/optimize/shots.js';
import { playlistInputArgs } from '../../daemon/quality/audio.js';
import { parseSsimSummaries } from '../../daemon/quality/ssim.js';
import { ROI_WINDOWS, groupWindows, roiForRendition, roiPixels } from '../../daemon/media/roi.js';
import type { PixelRect, Rect } from '../../daemon/media/roi.js';

// A real face (public-domain astronaut portrait) moving over a noisy test pattern, encoded as
// the optimizer does today and with the face region: the region must keep its SSIM while the
// shot gets clearly smaller, and the shot without a region must not change by a byte.

const W = 640; const H = 360; const FPS = 15; const SECONDS = 5.6;
const FACE = 192;
const PHOTO = fileURLToPath(new URL('../fixtures/astronaut-256.png', import.meta.url));
// where the photo sits at time t (the overlay expressions below, evaluated in JS)
const faceX = (t: number): number => Math.floor(200 + 20 * t);
const faceY = (t: number): number => Math.floor(60 + 8 * Math.sin(2 * t));

function shot(index: number, start: number, end: number, cls: ShotClass): Shot {
  return { index, start, end, cls, video: { diff: 0, diffP90: 0, ti: 0, si: 0, edges: 0, edgeGrowth: 0 }, audio: { speech: 1, music: 0, silence: 0, kind: 'speech' } };
}

/** The box the photo covers over the frames of [start, end), normalised: what a face model would report. */
function faceRect(start: number, end: number): Rect {
  let x0 = W; let y0 = H; let x1 = 0; let y1 = 0;
  for (let k = Math.round(start * FPS); k < Math.round(end * FPS); k++) {
    const t = k / FPS;
    x0 = Math.min(x0, faceX(t)); y0 = Math.min(y0, faceY(t));
    x1 = Math.max(x1, faceX(t) + FACE); y1 = Math.max(y1, faceY(t) + FACE);
  }
  return { x: x0 / W, y: y0 / H, w: (x1 - x0) / W, h: (y1 - y0) / H };
}

async function writeScript(dir: string, graph: string): Promise<string> {
  const p = join(dir, 'graph.txt');
  await writeFile(p, graph);
  return p;
}

function makeFaceClip(dir: string): string {
  const out = join(dir, 'face.mkv');
  ffmpeg(['-f', 'lavfi', '-i', `testsrc2=s=${W}x${H}:r=${FPS}:d=${SECONDS}`,
    '-loop', '1', '-framerate', String(FPS), '-t', String(SECONDS), '-i', PHOTO,
    '-filter_complex',
    // grain that changes every frame, as a classroom camera has: the bytes a region can save
    '[0:v]hue=s=0.5,noise=alls=10:allf=t+u[bg];'
    + `[1:v]format=yuv420p,zoompan=z='1+0.002*on':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=1:s=${FACE}x${FACE}:fps=${FPS}[face];`
    + "[bg][face]overlay=x='200+20*t':y='60+8*sin(2*t)':eval=frame,format=yuv420p",
    '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', out]);
  return out;
}

/** v0 arguments as the optimizer builds them: with the plan's regions, or with them taken out. */
function v0Args(plan: Plan, src: string, out: string, withRoi: boolean): string[] {
  const p = withRoi ? plan : { ...plan, shots: plan.shots.map((s) => ({ ...s, roi: undefined })) };
  const args = encodeArgs(p, src, out, { preset: 'medium', threads: 2, only: ['v0'], audio: false });
  const graph = args[args.indexOf('-filter_complex') + 1]!;
  const roi = roiForRendition(plan, plan.renditions[0]!);
  if (!roi) throw new Error('expected a region branch');
  // the region branch is in the graph exactly when the plan has regions
  if (graph.includes(roi.filter) !== withRoi) throw new Error(`region branch ${withRoi ? 'missing from' : 'left in'} ${graph}`);
  return args;
}

/** Coded bytes of each output frame, in presentation order. */
async function frameBytes(playlist: string): Promise<number[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', ...playlistInputArgs(playlist), '-select_streams', 'v:0',
    '-show_entries', 'frame=pkt_size', '-of', 'csv=p=0', playlist]);
  // a keyframe's line ends with a comma (its side data column)
  return stdout.split('\n').filter((l) => /^\d/.test(l)).map((l) => parseInt(l, 10));
}

/** SSIM (All) of output frames [from, to) against the same source frames, optionally inside a crop. */
async function ssimFrames(playlist: string, src: string, from: number, to: number, crop?: PixelRect): Promise<number> {
  const c = crop ? `,crop=${crop.w}:${crop.h}:${crop.x}:${crop.y}` : '';
  const pick = `trim=start_frame=${from}:end_frame=${to},setpts=PTS-STARTPTS${c}`;
  const { stderr } = await run('ffmpeg', ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'info',
    ...playlistInputArgs(playlist), '-i', playlist, '-i', src,
    '-filter_complex', `[0:v:0]${pick}[a];[1:v:0]${pick}[b];[a][b]ssim`, '-f', 'null', '-']);
  const [res] = parseSsimSummaries(stderr);
  if (!res) throw new Error(`no ssim summary: ${stderr.slice(-500)}`);
  return res.all;
}

t.test('no region anywhere: no branch, the encode stays as it is', async (t) => {
  const info = { path: 'x.mp4', duration: 4, video: { fps: 15, displayWidth: W, displayHeight: H } };
  const plan = makePlan(info as Parameters<typeof makePlan>[0], [shot(0, 0, 2, 'talking_head'), shot(1, 2, 4, 'slide')], { segmentSeconds: 6 });
  const r = plan.renditions[0]!;
  t.equal(roiForRendition(plan, r), undefined, 'plan without roi fields');
  t.equal(roiForRendition(plan, r, []), undefined, 'empty list');
  t.equal(roiForRendition(plan, r, [undefined, undefined]), undefined, 'all undefined');
  t.equal(roiForRendition(plan, r, [{ x: 0, y: 0, w: 1, h: 1 }, { x: 0.5, y: 0.5, w: 0, h: 0.2 }]), undefined,
    'whole frame or empty: nothing to save');
  t.same(roiPixels({ x: 0.38, y: 0.14, w: 0.42, h: 0.58 }, W, H), { x: 240, y: 48, w: 272, h: 224 }, 'grown to macroblocks');
  t.same(roiPixels({ x: 0.9, y: 0.9, w: 0.3, h: 0.3 }, W, H), { x: 576, y: 320, w: 64, h: 40 }, 'clamped to the frame');
  const two = roiForRendition(plan, r, [{ x: 0.3, y: 0.1, w: 0.4, h: 0.6 }, undefined]);
  t.same(two?.shots, [0]);
  t.match(two?.filter, /^,split=2\[roiv0b\]\[roiv0c0\];/);
  t.match(two?.filter, /overlay=x='192':y='32':eval=frame:enable='gte\(t,-0\.0001\)\*lt\(t,1\.9999\)'$/, 'sharp region only inside its shot');
});

/** Y plane of a yuv420p raw frame stream, frame by frame. */
async function lumaFrames(args: string[], w: number, h: number): Promise<Buffer[]> {
  const size = w * h * 3 / 2;
  const chunks: Buffer[] = [];
  await run('ffmpeg', args, { onStdout: (c) => chunks.push(c) });
  const all = Buffer.concat(chunks);
  const out: Buffer[] = [];
  for (let o = 0; o + size <= all.length; o += size) out.push(all.subarray(o, o + w * h));
  return out;
}

t.test('many region shots share at most three windows; each region stays exactly sharp', async (t) => {
  // six one-second shots, five with regions of four sizes, over a test pattern full of edges
  const w = 320; const h = 192; const fps = 10;
  const info = { path: 'x.mp4', duration: 6, video: { fps, displayWidth: w, displayHeight: h } };
  const shots = [0, 1, 2, 3, 4, 5].map((i) => shot(i, i, i + 1, 'talking_head'));
  const plan = makePlan(info as Parameters<typeof makePlan>[0], shots, { segmentSeconds: 6 });
  const rects: Array<Rect | undefined> = [
    { x: 0.1, y: 0.1, w: 0.3, h: 0.4 }, undefined, { x: 0.5, y: 0.2, w: 0.2, h: 0.3 },
    { x: 0.7, y: 0.5, w: 0.3, h: 0.5 }, { x: 0.05, y: 0.5, w: 0.5, h: 0.45 }, { x: 0.4, y: 0.05, w: 0.1, h: 0.2 },
  ];
  const r = { id: 'v0', width: w, height: h };
  const roi = roiForRendition(plan, r, rects)!;
  t.same(roi.shots, [0, 2, 3, 4, 5]);
  t.equal((roi.filter.match(/overlay=/g) ?? []).length, ROI_WINDOWS, 'five regions, three windows');
  const src = ['-f', 'lavfi', '-i', `testsrc2=s=${w}x${h}:r=${fps}:d=6,format=yuv420p`];
  const [plain, blurred] = await Promise.all([
    lumaFrames(['-v', 'error', ...src, '-f', 'rawvideo', 'pipe:1'], w, h),
    lumaFrames(['-v', 'error', ...src, '-filter_complex', `[0:v]null${roi.filter}`, '-f', 'rawvideo', 'pipe:1'], w, h),
  ]);
  t.equal(blurred.length, 60, 'every frame comes through');
  let checked = 0;
  for (let f = 0; f < 60; f++) {
    const i = Math.floor(f / fps);
    const a = plain[f]!; const b = blurred[f]!;
    const px = rects[i] && roiPixels(rects[i]!, w, h);
    if (!px) {
      if (!a.equals(b)) t.fail(`frame ${f}: a shot without a region must not change`);
      continue;
    }
    let diffInside = 0; let outside = 0; let diffOutside = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const inside = x >= px.x && x < px.x + px.w && y >= px.y && y < px.y + px.h;
        const d = a[y * w + x] !== b[y * w + x];
        if (inside) diffInside += d ? 1 : 0;
        else { outside++; diffOutside += d ? 1 : 0; }
      }
    }
    if (diffInside > 0) t.fail(`frame ${f}: ${diffInside} pixels of the region changed`);
    // the window may be larger than this shot's region, but most of the frame outside it is blurred
    if (diffOutside < 0.2 * outside) t.fail(`frame ${f}: only ${diffOutside} of ${outside} pixels outside the region blurred`);
    checked++;
  }
  t.equal(checked, 50, 'five region shots checked frame by frame');
});

t.test('600 region shots: a parseable graph, three windows, each at least its regions', async (t) => {
  const n = 600; const w = 320; const h = 180;
  const parts = Array.from({ length: n }, (_, i) => ({
    shot: i, start: i * 0.1, end: (i + 1) * 0.1,
    px: { x: 16 * (i % 7), y: 16 * (i % 3), w: 64 + 16 * (i % 9), h: 64 + 16 * (i % 5) },
  }));
  const windows = groupWindows(parts);
  t.equal(windows.length, ROI_WINDOWS);
  t.equal(windows.reduce((s, x) => s + x.parts.length, 0), n, 'every region is in one window');
  t.ok(windows.every((x) => x.parts.every((q) => q.px.w <= x.w && q.px.h <= x.h)), 'each window covers its regions');
  const info = { path: 'x.mp4', duration: n * 0.1, video: { fps: 30, displayWidth: w, displayHeight: h } };
  const plan = makePlan(info as Parameters<typeof makePlan>[0], parts.map((q) => shot(q.shot, q.start, q.end, 'talking_head')), { segmentSeconds: 6 });
  const rects = parts.map((q) => ({ x: q.px.x / w, y: q.px.y / h, w: q.px.w / w, h: q.px.h / h }));
  const roi = roiForRendition(plan, { id: 'v0', width: w, height: h }, rects)!;
  t.equal(roi.shots.length, n);
  // ffmpeg parses and runs it (a flat `enable` sum of 600 terms did not parse)
  await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=s=${w}x${h}:r=30:d=${n * 0.1},format=yuv420p`,
    '-filter_complex_script', await writeScript(t.testdir(), `[0:v]null${roi.filter}`), '-f', 'null', '-']);
  t.pass('600 region shots filtered');
});

t.test('face region: fewer bytes, the face as sharp as before', async (t) => {
  const dir = t.testdir();
  const src = makeFaceClip(dir);
  const info = await probe(src);
  // shot 0 has no face region; shots 1 and 2 are talking heads the model found a face in
  const cuts = [0, 1.6, 3.6, SECONDS];
  const shots = cuts.slice(0, -1).map((s, i) => shot(i, s, cuts[i + 1]!, 'talking_head'));
  const plan = makePlan(info, shots, { segmentSeconds: 6 });
  plan.shots[1]!.roi = faceRect(cuts[1]!, cuts[2]!);
  plan.shots[2]!.roi = faceRect(cuts[2]!, cuts[3]!);
  const r = plan.renditions[0]!;
  const { total, firstFrame } = simulateSelect(plan, r);

  const outs = { base: join(dir, 'base'), roi: join(dir, 'roi') };
  for (const [name, out] of Object.entries(outs)) {
    mkdirSync(join(out, 'v0'), { recursive: true });
    await run('ffmpeg', v0Args(plan, src, out, name === 'roi'));
  }
  const base = join(outs.base, 'v0', 'index.m3u8');
  const roi = join(outs.roi, 'v0', 'index.m3u8');
  const [bb, rb] = await Promise.all([frameBytes(base), frameBytes(roi)]);
  t.equal(bb.length, total, 'baseline keeps the planned frames');
  t.equal(rb.length, total, 'region encode keeps the planned frames');

  const span = (i: number): [number, number] => [firstFrame[i]!, firstFrame[i + 1] ?? total];
  const sum = (xs: number[], [a, b]: [number, number]): number => xs.slice(a, b).reduce((s, x) => s + x, 0);
  const s0 = span(0);
  t.equal(sum(rb, s0), sum(bb, s0), `shot without region unchanged (${sum(bb, s0)} bytes)`);

  let baseBytes = 0; let roiBytes = 0;
  for (const i of [1, 2]) {
    const [a, b] = span(i);
    const px = roiPixels(plan.shots[i]!.roi!, W, H)!;
    const [fb, fr, rgb, rgr] = await Promise.all([ssimFrames(base, src, a, b), ssimFrames(roi, src, a, b),
      ssimFrames(base, src, a, b, px), ssimFrames(roi, src, a, b, px)]);
    const bytesB = sum(bb, [a, b]); const bytesR = sum(rb, [a, b]);
    baseBytes += bytesB; roiBytes += bytesR;
    t.comment(`shot ${i} (region ${px.w}x${px.h}+${px.x}+${px.y}, ${(100 * px.w * px.h / (W * H)).toFixed(0)}% of the frame): `
      + `bytes ${bytesB} -> ${bytesR} (${(100 * (bytesR / bytesB - 1)).toFixed(1)}%), `
      + `frame SSIM ${fb.toFixed(4)} -> ${fr.toFixed(4)}, region SSIM ${rgb.toFixed(4)} -> ${rgr.toFixed(4)}`);
    t.ok(rgr >= rgb - 0.005, `shot ${i}: region SSIM held (${rgb.toFixed(4)} -> ${rgr.toFixed(4)})`);
    t.ok(fr < fb, `shot ${i}: the background pays (frame SSIM ${fb.toFixed(4)} -> ${fr.toFixed(4)})`);
  }
  const drop = 1 - roiBytes / baseBytes;
  t.comment(`region shots: ${baseBytes} -> ${roiBytes} bytes (-${(100 * drop).toFixed(1)}%)`);
  t.ok(drop >= 0.10, `region shots at least 10% smaller (${(100 * drop).toFixed(1)}%)`);
});
