import t from 'tap';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { makeClip } from '../helpers/media.js';
import { CHROMIUM, CHROMIUM_ARGS, hlsSkip, serveStatic } from '../helpers/hls-static.js';
import { encode } from '../../daemon/optimize/encode.js';
import { keyframeTimes } from '../../daemon/optimize/plan.js';
import type { Plan } from '../../daemon/optimize/plan.js';
import { AV1_ID, addAv1 } from '../../daemon/optimize/av1.js';
import { writeMaster } from '../../daemon/optimize/package.js';

// The AV1 data saver and the H.264 one each play through in Chromium with hls.js (frames
// advance to the end, no error), the master's AV1 level is kept because Chromium says it
// decodes its CODECS, and each reports what it dropped while playing.


const PAGE = `<!doctype html><video id="v" muted playsinline></video><script src="/hls.js"></script><script>
window.errors = []; const v = document.getElementById('v');
const q = new URLSearchParams(location.search);
const h = new Hls({ enableWorker: false, startLevel: 0 }); window.hls = h;
h.on(Hls.Events.ERROR, (_, d) => errors.push(d.type + ':' + d.details + (d.fatal ? ':fatal' : '')));
h.loadSource(q.get('src')); h.attachMedia(v); v.playbackRate = Number(q.get('rate') || 1);
v.play().catch((e) => errors.push('play:' + e.message));
</script>`;

t.test('AV1 and H.264 data savers both play through in Chromium with hls.js', { skip: hlsSkip }, async (t) => {
  const dir = t.testdir();
  const src = makeClip(dir, 'src', { seconds: 12, width: 640, height: 360, audio: false });
  const cls = ['slide', 'motion', 'talking_head', 'slide'] as const;
  const fps = { slide: 1, motion: 6, talking_head: 15 } as const;
  const shots = cls.map((c, i) => ({ index: i, start: i * 3, end: i * 3 + 3, cls: c, audio: 'silence' as const, reason: 'test' }));
  const plan: Plan = {
    version: 1, input: src, duration: 12, baseFps: 30, segmentSeconds: 3, shots, keyframes: keyframeTimes(shots, 3),
    renditions: [{ id: 'v0', label: 'test', effort: 'max', width: 640, height: 360, shots: cls.map((c) => ({ fps: fps[c], qp: 36 })) }],
  };
  const pkg = join(dir, 'pkg');
  await encode(plan, src, pkg, { preset: 'veryfast', threads: 2 });
  t.match(await addAv1(plan, src, pkg, { threads: 2, keepLarger: true }), { kept: true });
  const summary = await writeMaster(pkg, plan, undefined, [AV1_ID]);
  const av1Codec = summary.video.find((v) => v.id === AV1_ID)!.codec;
  await writeFile(join(dir, 'index.html'), PAGE);
  const server = await serveStatic(dir);
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/index.html`;
  type W = { errors: string[]; hls: { levels: Array<{ videoCodec?: string; url?: string[] | string }> } };

  for (const id of [AV1_ID, 'v0']) {
    const page = await browser.newPage();
    await page.goto(`${base}?src=/pkg/${id}/index.m3u8&rate=2`);
    await page.waitForFunction(() => { const v = document.querySelector('video')!; return v.ended || v.currentTime > 11.5 || (window as unknown as W).errors.some((e) => e.includes('fatal')); }, undefined, { timeout: 40_000 });
    const s = await page.evaluate(() => {
      const v = document.querySelector('video')!;
      const q = v.getVideoPlaybackQuality();
      return { t: v.currentTime, error: v.error?.message ?? null, errors: (window as unknown as W).errors, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames };
    });
    t.same(s.errors, [], `${id}: hls.js reported no error`);
    t.equal(s.error, null, `${id}: no media error`);
    t.ok(s.t > 11.5, `${id}: played to ${s.t.toFixed(2)} s of 12`);
    t.ok(s.frames > 20, `${id}: ${s.frames} frames shown, ${s.dropped} dropped`);
    await page.close();
  }

  // the master: Chromium decodes the AV1 CODECS the package declares, and hls.js keeps that level
  const page = await browser.newPage();
  await page.goto(`${base}?src=/pkg/master.m3u8`);
  t.ok(await page.evaluate((c) => MediaSource.isTypeSupported(`video/mp4; codecs="${c}"`), av1Codec), `Chromium decodes ${av1Codec}`);
  await page.waitForFunction(() => (window as unknown as W).hls.levels.length > 0, undefined, { timeout: 20_000 });
  const levels = await page.evaluate(() => (window as unknown as W).hls.levels.map((l) => ({ codec: l.videoCodec ?? '', url: String(Array.isArray(l.url) ? l.url[0] : l.url) })));
  t.ok(levels.some((l) => l.codec.startsWith('av01') && l.url.includes(`/${AV1_ID}/`)), `AV1 level kept: ${JSON.stringify(levels)}`);
  t.ok(levels.some((l) => l.codec.startsWith('avc1') && l.url.includes('/v0/')), 'H.264 level kept');
});
