// Prints the bench:levers table: per lecture and variant, the lowest rendition's MB/min split
// into video, audio and container, each floor, and the change against the first variant.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, lectures, variants] = process.argv.slice(2);
const FLOORS = { ocr: 0.97, stoi: 0.96, head: 0.95, motion: 0.75, goal: 0.35 };
const f = (x, d = 3) => (x === null || x === undefined ? '–' : Number(x).toFixed(d));
const names = variants.split(/\s+/).filter(Boolean).map((v) => v.split('@')[0]);
console.log('| lecture | variant (commit) | MB/min | vs first | video kb/s | audio kb/s | container kb/s | OCR ratio | STOI | SSIM head | SSIM motion | SSIM slide | floors | ≤ 0.35 |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const spec of lectures.split(/\s+/).filter(Boolean)) {
  const [lang, seed] = spec.split(':');
  const W = join(dir, `${lang}-${seed}`, 'levers');
  let first;
  for (const name of names) {
    const p = join(W, `${name}.score.json`);
    if (!existsSync(p)) continue;
    const d = JSON.parse(readFileSync(p, 'utf8'));
    const run = existsSync(join(W, `${name}.run`)) ? readFileSync(join(W, `${name}.run`), 'utf8').trim().split(' ')[2] : '?';
    const pk = d.ssim?.per_kind ?? {};
    first ??= d.mb_per_min;
    const ok = d.ocr.word_acc_ratio >= FLOORS.ocr && d.speech.stoi >= FLOORS.stoi && (pk.talking_head?.all ?? 1) >= FLOORS.head && (pk.motion?.all ?? 1) >= FLOORS.motion;
    const delta = d.mb_per_min === first ? '' : `${((d.mb_per_min / first - 1) * 100).toFixed(1)}%`;
    console.log(`| ${lang}-${seed} | ${name} (${run}) | ${f(d.mb_per_min)} | ${delta} | ${f(d.video_kbps, 2)} | ${f(d.audio_kbps, 2)} | ${f(d.overhead_kbps, 2)} | ${f(d.ocr.word_acc_ratio)} | ${f(d.speech.stoi)} | ${f(pk.talking_head?.all)} | ${f(pk.motion?.all)} | ${f(pk.slide?.all)} | ${ok ? 'met' : 'MISSED'} | ${d.mb_per_min <= FLOORS.goal ? 'yes' : 'no'} |`);
  }
}
