// Prints the bench:optimize table from the scorer's JSON files (one row per lecture × recipe),
// then Yachay's bytes as a ratio of the Kolibri and expert recipes measured in the same run.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const [dir, ...lectures] = process.argv.slice(2);
// yachay_av1: the AV1 data saver (AV1=1), its own row beside the H.264 one
const RECIPES = ['yachay', 'yachay_av1', 'kolibri_lowres', 'expert_x264', 'yt360', 'yt144'];
const FLOORS = { ocr: 0.97, stoi: 0.96, head: 0.95, motion: 0.75, mbmin: 0.55 };
const f = (x, d = 3) => (x === null || x === undefined ? '–' : Number(x).toFixed(d));
const rows = [];
const ratios = [];
let allOk = true;
for (const spec of lectures) {
  const [lang, seed] = spec.split(':');
  const byRecipe = {};
  for (const r of RECIPES) {
    const p = join(dir, `${lang}-${seed}`, 'scores', `${r}.json`);
    if (!existsSync(p)) continue;
    const d = JSON.parse(readFileSync(p, 'utf8'));
    byRecipe[r] = d;
    const pk = d.ssim?.per_kind ?? {};
    const ok = !r.startsWith('yachay') ? '' :
      (d.ocr.word_acc_ratio >= FLOORS.ocr && d.speech.stoi >= FLOORS.stoi && (pk.talking_head?.all ?? 1) >= FLOORS.head &&
        (pk.motion?.all ?? 1) >= FLOORS.motion && d.mb_per_min <= FLOORS.mbmin) ? 'yes' : 'NO';
    if (ok === 'NO') allOk = false;
    rows.push(`| ${lang}-${seed} | ${r} | ${f(d.mb_per_min)} | ${f(d.ocr?.word_acc_ratio)} | ${f(d.speech?.stoi)} | ${f(pk.talking_head?.all)} | ${f(pk.motion?.all)} | ${f(pk.slide?.all)} | ${f(d.encode_x_realtime, 1)} | ${ok} |`);
  }
  const y = byRecipe.yachay; const k = byRecipe.kolibri_lowres; const e = byRecipe.expert_x264;
  if (y && k && e) ratios.push(`${lang}-${seed}: Yachay = ${f(y.mb_per_min / k.mb_per_min, 2)}× Kolibri's bytes, ${f(y.mb_per_min / e.mb_per_min, 2)}× the expert recipe's`);
}
console.log('| lecture | recipe | MB/min | OCR ratio | STOI | SSIM head | SSIM motion | SSIM slide | encode × RT | floors+budget |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
console.log('');
for (const r of ratios) console.log(r);
console.log(`floors: OCR ≥ ${FLOORS.ocr}, STOI ≥ ${FLOORS.stoi}, SSIM head ≥ ${FLOORS.head}, motion ≥ ${FLOORS.motion}, ≤ ${FLOORS.mbmin} MB/min (lowest rendition): ${allOk ? 'met on every lecture' : 'MISSED on at least one lecture'}`);
