// One class of shots of one lecture coded at a grid of (fps, QP), rows appended to a JSONL file
// after each frame rate (an interrupted run keeps what it measured). The quick look behind the
// README's frame-rate table; `yachay models collect --rates` is the full sweep.
// Usage: tsx test/bench/rate-fps-probe.ts LECTURE.mp4 NAME es|en OUT.jsonl CLASS FPS,FPS OFFSETS
import { probe } from '../../daemon/optimize/probe.js';
import { analyse } from '../../daemon/optimize/analyse.js';
import { findShots } from '../../daemon/optimize/shots.js';
import type { ShotClass } from '../../daemon/optimize/shots.js';
import { outputSize } from '../../daemon/optimize/plan.js';
import { loadNative } from '../../daemon/analysis/native.js';
import { configDefaults } from '../../daemon/config/load.js';
import { sweepShots } from '../../daemon/models/rate/sweep.js';
import { appendJsonl } from '../../daemon/models/rate/store.js';

const [input, lesson, lang, out, cls, fpsList, offsets] = process.argv.slice(2);
if (!input || !lesson || !out || !cls || !fpsList || !offsets) throw new Error('usage: LECTURE NAME es|en OUT.jsonl CLASS FPS,FPS OFFSETS');
const info = await probe(input);
const an = await analyse(info, loadNative(), 5, {});
const shots = findShots(an, info.duration).filter((s) => s.cls === cls);
const media = { baseFps: Math.min(30, Math.round(info.video!.fps)), size: outputSize(info.video!.displayWidth, info.video!.displayHeight) };
for (const fps of fpsList.split(',').map(Number)) {
  const rows = await sweepShots(input, shots, {
    lesson, kernels: loadNative(), floors: configDefaults().optimize.floors, lang: lang === 'en' ? 'eng' : 'spa',
    rates: { [cls as ShotClass]: [fps] }, offsets: offsets.split(',').map(Number),
  }, media);
  await appendJsonl(out, rows);
  console.log(JSON.stringify(rows.map((r) => ({ shot: r.shot, fps: r.settings.fps, qp: r.settings.qp, q: r.quality.value, bytes: r.bytes }))));
}
