// Prints the bench:models table: heuristic vs model-assisted plan per lecture (bytes of the
// lowest rendition + Opus, the scorer's floors), the saving, the time the models cost against
// the encode, and each model's latency per call from `yachay models check --json`.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
// the floors the box itself enforces (run with `node --import tsx`, see models.sh)
import { configSchema } from '../../daemon/config/schema.js';

const [dir, ...lectures] = process.argv.slice(2);
const variants = (process.env.VARIANTS ?? 'heuristic:none models:vad,face,rate').split(/\s+/).filter(Boolean).map((v) => v.split(':')[0]);
const floor = configSchema.properties.optimize.properties.floors.properties;
const FLOORS = {
  ocr: floor.ocrRatio.default, stoi: floor.stoi.default, head: floor.ssimTalkingHead.default, motion: floor.ssimMotion.default,
};
const f = (x, d = 3) => (x === null || x === undefined ? '–' : Number(x).toFixed(d));
const meets = (d) => {
  const pk = d.ssim?.per_kind ?? {};
  return d.ocr.word_acc_ratio >= FLOORS.ocr && d.speech.stoi >= FLOORS.stoi &&
    (pk.talking_head?.all ?? 1) >= FLOORS.head && (pk.motion?.all ?? 1) >= FLOORS.motion;
};
const rows = []; const savings = []; const costs = [];
let allOk = true;
for (const spec of lectures) {
  const [lang, seed] = spec.split(':');
  const load = (v) => {
    const p = join(dir, `${lang}-${seed}`, 'scores', `models-${v}.json`);
    return existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : undefined;
  };
  const h = load('heuristic');
  if (!h) { console.error(`bench: heuristic scores missing for ${lang}-${seed}`); allOk = false; continue; }
  for (const name of variants) {
    const d = load(name);
    if (!d) continue;
    const pk = d.ssim?.per_kind ?? {};
    const ok = meets(d);
    if (!ok) allOk = false;
    const t = d.yachay?.timings_ms ?? {};
    const saved = name === 'heuristic' ? '' : ` (${(100 * (1 - d.mb_per_min / h.mb_per_min)).toFixed(1)}%)`;
    rows.push(`| ${lang}-${seed} | ${name} | ${f(d.mb_per_min)}${saved} | ${f(d.ocr?.word_acc_ratio)} | ${f(d.speech?.stoi)} | ${f(pk.talking_head?.all)} | ${f(pk.motion?.all)} | ${d.yachay?.attempts ?? '–'} | ${f(d.wall_s, 1)} | ${ok ? 'yes' : 'NO'} |`);
    if (name !== 'heuristic') savings.push({ lecture: `${lang}-${seed}`, variant: name, saving: 1 - d.mb_per_min / h.mb_per_min, h: h.mb_per_min, m: d.mb_per_min });
    if (name === variants[variants.length - 1]) {
      const encode = Object.entries(t).filter(([k]) => k.startsWith('encode')).reduce((s, [, v]) => s + v, 0);
      costs.push({ lecture: `${lang}-${seed}`, variant: name, analyse: t.analyse ?? 0, models: t.models ?? 0, encode });
    }
  }
}
console.log('| lecture | plan | MB/min (saving) | OCR ratio | STOI | SSIM head | SSIM motion | encodes | wall s | floors met |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
console.log('');
for (const v of variants.filter((x) => x !== 'heuristic')) {
  const mine = savings.filter((s) => s.variant === v);
  if (!mine.length) continue;
  const mean = mine.reduce((a, s) => a + s.saving, 0) / mine.length;
  console.log(`${v}: ${mine.map((s) => `${s.lecture} ${f(s.m)} vs ${f(s.h)} MB/min (${(s.saving * 100).toFixed(1)}%)`).join('; ')}; mean ${(mean * 100).toFixed(1)}% fewer bytes`);
}
console.log(`goal: the model-assisted plan ≥ 25% fewer bytes at the same floors; ${allOk ? 'floors met by every plan on every lecture' : 'a floor was MISSED (see the table)'}`);
for (const c of costs) {
  const share = (c.analyse + c.models) / Math.max(1, c.encode);
  console.log(`${c.lecture} (${c.variant}): analysis ${c.analyse} ms + models ${c.models} ms = ${(share * 100).toFixed(1)}% of encode time ${c.encode} ms (goal ≤ 10%)`);
}
const checkFile = join(dir, 'models-check.json');
if (existsSync(checkFile) && readFileSync(checkFile, 'utf8').trim()) {
  console.log('\n| model | backend | load ms | per call ms |');
  console.log('|---|---|---|---|');
  for (const c of JSON.parse(readFileSync(checkFile, 'utf8'))) {
    console.log(`| ${c.id} | ${c.backend}${c.accelerator ? '+' + c.accelerator : ''} | ${f(c.loadMs, 0)} | ${f(c.runMs, 2)} |`);
  }
}
