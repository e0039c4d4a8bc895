#!/usr/bin/env node
// npm run bench:real — every clip of the real-footage corpus (test/corpus/build.sh) through
// `yachay optimize` with the default models, beside the Kolibri recipe on the same clip: the
// classes the plan chose against what the clip is, the audio mode, the data-saver's MB/min,
// the per-shot misses the package reports (with the ceiling the source allowed), and time.
//   YACHAY_CORPUS=~/.cache/yachay-corpus   OUT=/tmp/yachay-bench-real   ONLY=film,screen-recording
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CORPUS = process.env.YACHAY_CORPUS ?? join(homedir(), '.cache', 'yachay-corpus');
const OUT = process.env.OUT ?? '/tmp/yachay-bench-real';
const only = process.env.ONLY?.split(',');

const built = spawnSync('bash', [join(ROOT, 'test/corpus/build.sh'), CORPUS], { stdio: ['ignore', 'inherit', 'inherit'] });
if (built.status !== 0) { console.error(`bench: the corpus builder failed (exit ${built.status})`); process.exit(1); }
const corpus = JSON.parse(readFileSync(join(CORPUS, 'corpus.json'), 'utf8'));
const clips = (Array.isArray(corpus) ? corpus : corpus.clips).filter((c) => !only || only.includes(c.kind));
mkdirSync(OUT, { recursive: true });

const duration = (f) => Number(spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', f], { encoding: 'utf8' }).stdout.trim());
const mmss = (s) => `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, '0')}`;
const rows = [];
for (const c of clips) {
  const src = join(CORPUS, c.file);
  const dir = join(OUT, c.kind);
  rmSync(dir, { recursive: true, force: true });
  const secs = duration(src);
  let t0 = performance.now();
  const r = spawnSync('node', [join(ROOT, 'bin/yachay.mjs'), 'optimize', src, '--out', dir, '--quiet'], { encoding: 'utf8' });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0 || !existsSync(join(dir, 'report.json'))) {
    rows.push(`| ${c.kind} | ${secs.toFixed(0)} s | exit ${r.status}: ${r.stderr.trim().split('\n').pop()} | | | | | |`);
    continue;
  }
  const rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
  const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8'));
  const sum = JSON.parse(r.stdout);
  const time = {};
  for (const s of plan.shots) time[s.cls] = (time[s.cls] ?? 0) + s.end - s.start;
  const classes = Object.entries(time).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${Math.round((100 * v) / plan.duration)}%`).join(', ');
  const expected = c.expect.includes(Object.entries(time).sort((a, b) => b[1] - a[1])[0]?.[0]) ? 'yes' : 'no';
  const misses = (rep.misses ?? []).map((m) => `${m.kind} ${mmss(m.start)}–${mmss(m.end)} ${m.value.toFixed(3)}<${m.floor.toFixed(3)}${m.ceiling !== undefined ? ` (ceiling ${m.ceiling.toFixed(3)})` : ''}`).join('; ') || 'none';
  // the peer: Kolibri's recipe (shared/eval/baselines.sh enc_kolibri_lowres), argument for argument
  const kol = join(OUT, `${c.kind}.kolibri.mp4`);
  t0 = performance.now();
  spawnSync('ffmpeg', ['-nostats', '-nostdin', '-y', '-i', src, '-vf', "scale='w=-2:h=trunc(min(ih,480)/2)*2'", '-pix_fmt', 'yuv420p',
    '-map', '0:0', ...(plan.audio ? ['-map', '0:1'] : []), '-b:a', '32k', '-ac', '1', '-crf', '32', '-v', 'error', '-strict', '-2',
    '-profile:v', 'baseline', '-level', '3.0', '-preset', 'slow', '-movflags', 'faststart', kol]);
  const kolWall = (performance.now() - t0) / 1000;
  const kolMb = existsSync(kol) ? statSync(kol).size / 1e6 / (secs / 60) : NaN;
  rows.push(`| ${c.kind} | ${secs.toFixed(0)} s | ${classes} (${expected}) | ${plan.audio?.mode ?? '–'} | ${sum.lowest_mb_per_min.toFixed(3)} / ${kolMb.toFixed(3)} | ${rep.attempts} | ${misses} | ${(secs / wall).toFixed(2)}× / ${(secs / kolWall).toFixed(2)}× |`);
  console.error(rows[rows.length - 1]);
}
console.log(`real footage, ${new Date().toISOString().slice(0, 10)}, ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()} cores, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
console.log('| clip | length | classes (as expected) | audio | MB/min yachay / kolibri | encodes | misses per shot | × real time yachay / kolibri |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
