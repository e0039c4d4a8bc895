import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeClip } from '../helpers/media.js';
import { encode } from '../../daemon/optimize/encode.js';
import { keyframeTimes } from '../../daemon/optimize/plan.js';
import type { Plan } from '../../daemon/optimize/plan.js';
import { AV1_ID, addAv1, av1Chunks, AV1_DEFAULTS } from '../../daemon/optimize/av1.js';
import { writeMaster } from '../../daemon/optimize/package.js';
import type { Miss } from '../../daemon/optimize/verify.js';

// The AV1 data saver beside the H.264 one: the same frames at the same times, a keyframe where
// the H.264 rendition has one, CODECS that tell a player what it must decode, and a rendition
// that misses its floor twice is dropped without touching the rest of the package.

function lecturePlan(src: string): Plan {
  const cls = ['slide', 'motion', 'talking_head', 'slide'] as const;
  const fps = { slide: 1, motion: 6, talking_head: 15 } as const;
  const qp = { slide: 31, motion: 39, talking_head: 37 } as const;
  const shots = cls.map((c, i) => ({ index: i, start: i * 3, end: i * 3 + 3, cls: c, audio: 'speech' as const, reason: 'test' }));
  return {
    version: 1, input: src, duration: 12, baseFps: 30, segmentSeconds: 3, shots,
    keyframes: keyframeTimes(shots, 3),
    renditions: [{ id: 'v0', label: 'test', effort: 'max', width: 320, height: 180, shots: cls.map((c) => ({ fps: fps[c], qp: qp[c] })) }],
    audio: { mode: 'speech', opus: { bitrate: 12000, application: 'voip', sampleRate: 48000, frameMs: 60 }, aac: { bitrate: 20000, sampleRate: 16000 } },
  };
}

interface Packet { pts: number; key: boolean }
function packets(playlist: string): Packet[] {
  const r = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', playlist], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim().split('\n').map((l) => { const [pts, flags] = l.split(','); return { pts: Number(pts), key: (flags ?? '').startsWith('K') }; });
}

/** frames decoded from the playlist by ffmpeg, with any decoding error */
function decode(playlist: string): { frames: number; codec: string; errors: string } {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', playlist, '-map', '0:v:0', '-f', 'framemd5', '-'], { encoding: 'utf8' });
  const codec = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', playlist], { encoding: 'utf8' }).stdout.trim();
  return { frames: r.stdout.split('\n').filter((l) => /^0,/.test(l)).length, codec, errors: r.stderr.trim() };
}

t.test('the AV1 data saver has the H.264 one\'s frames and keyframes, and the master lists both with their CODECS', async (t) => {
  const dir = t.testdir();
  const src = makeClip(dir, 'src', { seconds: 12, width: 640, height: 360 });
  const plan = lecturePlan(src);
  const pkg = join(dir, 'pkg');
  await encode(plan, src, pkg, { preset: 'veryfast', threads: 2 });
  const rep = await addAv1(plan, src, pkg, { threads: 2, keepLarger: true });
  t.match(rep, { id: AV1_ID, kept: true, attempts: 1 });

  const times = (ps: Packet[]): string[] => ps.map((p) => p.pts.toFixed(3)).sort((a, b) => Number(a) - Number(b));
  const h264 = packets(join(pkg, 'v0', 'index.m3u8'));
  const av1 = packets(join(pkg, AV1_ID, 'index.m3u8'));
  // x264's first three source frames are always kept (its B-frame delay, encode.ts LEAD_FRAMES);
  // AV1 has no such delay, so it starts on the plan's own first frame
  const lead = new Set(['0.099', '0.133']);
  t.same(times(av1), times(h264).filter((x) => !lead.has(x)), 'every frame of the H.264 data saver but its lead frames, at the same time');
  t.same(times(av1.filter((p) => p.key)), times(h264.filter((p) => p.key)), 'a keyframe where H.264 has one (every shot, every segment of moving shots)');

  for (const id of ['v0', AV1_ID]) {
    const d = decode(join(pkg, id, 'index.m3u8'));
    t.equal(d.errors, '', `${id} decodes without an error`);
    t.equal(d.frames, id === 'v0' ? h264.length : av1.length, `${id}: every frame decodes`);
    t.equal(d.codec.split('\n')[0], id === 'v0' ? 'h264' : 'av1', `${id} is ${d.codec}`);
  }

  const summary = await writeMaster(pkg, plan, undefined, [AV1_ID]);
  const master = readFileSync(join(pkg, 'master.m3u8'), 'utf8');
  const inf = master.split('\n').flatMap((l, i, all) => (l.startsWith('#EXT-X-STREAM-INF:') ? [{ attrs: l, uri: all[i + 1]! }] : []));
  const av1Rows = inf.filter((v) => v.uri === `${AV1_ID}/index.m3u8`);
  t.equal(av1Rows.length, 2, 'AV1 listed with each audio codec');
  for (const v of av1Rows) t.match(v.attrs, /CODECS="av01\.0\.\d\dM\.08,(opus|mp4a\.40\.2)"/, 'AV1 CODECS: profile 0, level, Main tier, 8 bit');
  for (const v of inf.filter((x) => x.uri === 'v0/index.m3u8')) t.match(v.attrs, /CODECS="avc1\.64/, 'H.264 keeps its CODECS');
  t.equal(inf[0]!.uri, `${AV1_ID}/index.m3u8`, 'AV1 first: the lowest BANDWIDTH, the fewest bytes');
  const bw = inf.map((v) => Number(/BANDWIDTH=(\d+)/.exec(v.attrs)![1]));
  t.same(bw, [...bw].sort((a, b) => a - b), 'BANDWIDTH rises down the list');
  t.ok(summary.video.some((v) => v.id === AV1_ID && v.codec.startsWith('av01.')), 'the summary counts it');
  const ffprobeMaster = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', join(pkg, 'master.m3u8')], { encoding: 'utf8' });
  t.match(ffprobeMaster.stdout, /av1/, 'the master plays through ffmpeg\'s HLS reader with the AV1 variant');
});

t.test('a shot that misses gets finer AV1 quality once; a second miss drops the AV1 rendition, never the lesson', async (t) => {
  const dir = t.testdir();
  const src = makeClip(dir, 'src', { seconds: 6, width: 320, height: 180, audio: false });
  const full = lecturePlan(src);
  // two shots, one chunk each: the retry logic, not the encoder, is under test here
  const shots = full.shots.slice(0, 2);
  const plan: Plan = { ...full, duration: 6, shots, keyframes: keyframeTimes(shots, 3), audio: undefined,
    renditions: [{ ...full.renditions[0]!, width: 160, height: 90, shots: full.renditions[0]!.shots.slice(0, 2) }] };
  const pkg = join(dir, 'pkg');
  await encode(plan, src, pkg, { preset: 'veryfast', threads: 2 });
  const miss: Miss = { shot: 1, start: 3, end: 6, kind: 'picture', value: 0.7, floor: 0.75 };
  const seen: number[] = [];
  const rep = await addAv1(plan, src, pkg, {
    threads: 2,
    verify: async (p) => {
      t.equal(p.renditions[0]!.id, AV1_ID, 'verify measures the AV1 rendition');
      seen.push(readFileSync(join(pkg, AV1_ID, 'index.m3u8'), 'utf8').length);
      return [miss];
    },
  });
  t.match(rep, { kept: false, attempts: 2, reason: /floor/ });
  // held to its floors but larger than the H.264 rendition: a phone would pay more for it
  const big = await addAv1(plan, src, pkg, { threads: 2, verify: async () => [], settings: { ...AV1_DEFAULTS, crfOffset: -30, classOffset: undefined } });
  t.match(big, { kept: false, attempts: 1, reason: /not smaller than H\.264/ });
  t.notOk(existsSync(join(pkg, AV1_ID)), 'a larger AV1 rendition is not listed');
  t.equal(seen.length, 2, 'measured twice');
  t.notOk(existsSync(join(pkg, AV1_ID)), 'the AV1 rendition is gone');
  t.ok(existsSync(join(pkg, 'v0', 'index.m3u8')), 'the H.264 data saver stays');
  // the retry is finer on the missed shot only
  const first = av1Chunks(plan, plan.renditions[0]!, AV1_DEFAULTS);
  const finer = av1Chunks(plan, plan.renditions[0]!, { ...AV1_DEFAULTS, shotOffset: { 1: -6 } });
  t.same(finer.map((c, i) => first[i]!.crf - c.crf), first.map((c) => (c.from >= 3 && c.to <= 6 ? 6 : 0)));
});
