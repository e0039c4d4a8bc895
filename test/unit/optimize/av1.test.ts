import t from 'tap';
import { AV1_DEFAULTS, av1Chunks, av1CodecString, finerOn } from '../../../daemon/optimize/av1.js';
import { keyframeTimes } from '../../../daemon/optimize/plan.js';
import type { Plan } from '../../../daemon/optimize/plan.js';
import { codecString, masterPlaylist } from '../../../daemon/optimize/package.js';
import type { RenditionStats } from '../../../daemon/optimize/package.js';

function plan(): Plan {
  const cls = ['slide', 'motion', 'talking_head'] as const;
  const shots = [
    { index: 0, start: 0, end: 10, cls: cls[0], audio: 'speech' as const, reason: '' },
    { index: 1, start: 10, end: 23, cls: cls[1], audio: 'speech' as const, reason: '' },
    { index: 2, start: 23, end: 23.3, cls: cls[2], audio: 'speech' as const, reason: '' },
  ];
  return {
    version: 1, input: 'x', duration: 23.3, baseFps: 30, segmentSeconds: 6, shots, keyframes: keyframeTimes(shots, 6),
    renditions: [{ id: 'v0', label: '', effort: 'max', width: 1280, height: 720, shots: [{ fps: 1, qp: 31 }, { fps: 6, qp: 39 }, { fps: 15, qp: 37 }] }],
  };
}

t.test('chunks: one per stretch between keyframes, each at its shots\' finest AV1 quality', async (t) => {
  const p = plan();
  const s = { preset: 10, crfOffset: 20, classOffset: { slide: 8, motion: 2, talking_head: 6 } };
  const c = av1Chunks(p, p.renditions[0]!, s);
  // the plan's keyframes: every shot start, and every second segment (12 s) of a moving shot
  t.same(c.map((x) => [x.from, x.to]), [[0, 10], [10, 22], [22, 23.3]], 'cut at every keyframe of the plan');
  // a 0.3 s shot has no keyframe of its own: its chunk takes the finer of the two (head 37+26 vs motion 39+22)
  t.same(c.map((x) => x.crf), [59, 61, 61]);
  t.same(av1Chunks(p, p.renditions[0]!, { ...s, crfOffset: 40 }).map((x) => x.crf), [63, 63, 63], 'AV1\'s scale ends at 63');
  const finer = av1Chunks(p, p.renditions[0]!, finerOn(s, [1]));
  t.same(finer.map((x) => x.crf), [59, 55, 55], 'a missed shot goes 6 steps finer, the rest stays');
  t.ok(AV1_DEFAULTS.preset >= 0 && AV1_DEFAULTS.preset <= 13);
});

t.test('AV1 CODECS string from ffprobe\'s stream', async (t) => {
  t.equal(av1CodecString({ profile: 'Main', level: 8, pix_fmt: 'yuv420p' }), 'av01.0.08M.08');
  t.equal(av1CodecString({ profile: 'Main', level: 5, pix_fmt: 'yuv420p' }), 'av01.0.05M.08');
  t.equal(av1CodecString({ profile: 'High', level: 12, pix_fmt: 'yuv444p10le' }), 'av01.1.12M.10');
  t.equal(codecString({ codec_name: 'av1', profile: 'Main', level: 9, pix_fmt: 'yuv420p' }), 'av01.0.09M.08');
});

t.test('the master lists the AV1 twin before its H.264 rendition, BANDWIDTH rising', async (t) => {
  const p = plan();
  p.renditions.push({ ...p.renditions[0]!, id: 'v1', effort: 'fast' });
  const st = (id: string, codec: string, bps: number): RenditionStats => ({ id, playlist: `${id}/index.m3u8`, segments: 3, duration: 23.3, bytes: bps * 3, averageBps: bps, peakBps: bps * 2, codec, width: 1280, height: 720 });
  const m = masterPlaylist([st('v0', 'avc1.640028', 50000), st('v1', 'avc1.640028', 150000), st('v0a', 'av01.0.08M.08', 40000)], [st('a-opus', 'opus', 10000)], p);
  const uris = m.split('\n').filter((l) => l.endsWith('index.m3u8') && !l.startsWith('#'));
  t.same(uris, ['v0a/index.m3u8', 'v0/index.m3u8', 'v1/index.m3u8']);
  t.match(m, /CODECS="av01\.0\.08M\.08,opus",RESOLUTION=1280x720,FRAME-RATE=15\.000/);
  const bw = [...m.matchAll(/STREAM-INF:BANDWIDTH=(\d+)/g)].map((x) => Number(x[1]));
  t.same(bw, [...bw].sort((a, b) => a - b));
});
