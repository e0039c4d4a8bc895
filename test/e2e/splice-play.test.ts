import t from 'tap';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { makeClip } from '../helpers/media.js';
import { CHROMIUM, CHROMIUM_ARGS, hlsSkip, serveStatic } from '../helpers/hls-static.js';
import { encode, headerQp } from '../../daemon/optimize/encode.js';
import { keyframeTimes, withMoreBits } from '../../daemon/optimize/plan.js';
import type { Plan } from '../../daemon/optimize/plan.js';
import { changedShots, segmentSpans, segmentsCovering, spliceSegments } from '../../daemon/optimize/splice.js';

// A rendition whose middle segments were re-encoded and spliced in (same init section, same
// playlist) plays straight through in Chromium with hls.js, the web player's engine: no error,
// one buffered range, the video reaches the end.


const PAGE = `<!doctype html><video id="v" muted playsinline></video><script src="/hls.js"></script><script>
window.errors = []; const v = document.getElementById('v');
const h = new Hls({ enableWorker: false }); h.on(Hls.Events.ERROR, (_, d) => errors.push(d.type + ':' + d.details + (d.fatal ? ':fatal' : '')));
h.loadSource('/pkg/v0/index.m3u8'); h.attachMedia(v); v.playbackRate = 4; v.play().catch((e) => errors.push('play:' + e.message));
</script>`;

t.test('a spliced rendition plays through in Chromium with hls.js', { skip: hlsSkip }, async (t) => {
  const dir = t.testdir();
  const src = makeClip(dir, 'src', { seconds: 20, width: 640, height: 360, audio: false });
  const cls = ['slide', 'motion', 'talking_head', 'motion', 'slide'] as const;
  const fps = { slide: 1, motion: 6, talking_head: 15 } as const;
  const shots = cls.map((c, i) => ({ index: i, start: i * 4, end: i * 4 + 4, cls: c, audio: 'silence' as const, reason: 'test' }));
  const plan: Plan = {
    version: 1, input: src, duration: 20, baseFps: 30, segmentSeconds: 2, shots,
    // keyframeTimes gives moving shots a keyframe every two of ITS segments: asked for 1 s, one
    // every 2 s, so each 2 s segment of this plan still starts on one
    keyframes: keyframeTimes(shots, 1),
    renditions: [{ id: 'v0', label: 'test', effort: 'max', width: 320, height: 180, shots: cls.map((c) => ({ fps: fps[c], qp: 36 })) }],
  };
  const pkg = join(dir, 'pkg');
  await encode(plan, src, pkg, { preset: 'veryfast', threads: 2 });
  // shots 1 and 3 get more frames: four segments in the middle are replaced
  const next = withMoreBits(plan, 'v0', [1, 3]);
  const { spans } = await segmentSpans(join(pkg, 'v0'), plan, 'v0');
  const indices = segmentsCovering(spans, changedShots(plan, next, 'v0'));
  const replaced: string[] = [];
  await spliceSegments(plan, next, src, pkg, 'v0', indices, { preset: 'veryfast', threads: 2, headerQp: headerQp(plan.renditions[0]!), keepDir: join(dir, 'keep'), replaced });
  t.ok(replaced.length >= 3, `replaced ${replaced.join(', ')}`);
  await writeFile(join(dir, 'index.html'), PAGE);
  const server = await serveStatic(dir);
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/index.html`);
  await page.waitForFunction(() => { const v = document.querySelector('video')!; return v.ended || v.currentTime > 19.5 || (window as unknown as { errors: string[] }).errors.some((e) => e.includes('fatal')); }, undefined, { timeout: 30_000 });
  const state = await page.evaluate(() => {
    const v = document.querySelector('video')!;
    const ranges = Array.from({ length: v.buffered.length }, (_, i) => [v.buffered.start(i), v.buffered.end(i)]);
    return { t: v.currentTime, ended: v.ended, error: v.error?.message ?? null, ranges, errors: (window as unknown as { errors: string[] }).errors, frames: v.getVideoPlaybackQuality().totalVideoFrames };
  });
  t.same(state.errors, [], 'hls.js reported no error');
  t.equal(state.error, null, 'the video element has no error');
  t.ok(state.t > 19.5, `played to ${state.t.toFixed(2)} s of 20`);
  t.equal(state.ranges.length, 1, `one buffered range: ${JSON.stringify(state.ranges)}`);
  t.ok(state.frames > 0, `${state.frames} frames shown`);
});
