// Prints the bench:long table (test/bench/long.sh) from the run's files and writes every
// figure, with the date and the machine, to one JSON.
//   node test/bench/long-report.mjs <run-dir> <lecture-dir> <out.json>
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { join, resolve } from 'node:path';

const [run, lecDir, outJson] = process.argv.slice(2);
const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const json = (p) => (existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : null);
const text = (p) => (existsSync(p) ? readFileSync(p, 'utf8').trim() : null);
const sh = (cmd, args) => { try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return null; } };
const f = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x) ? '–' : Number(x).toFixed(d));
const GOALS = { xRealtime: 4, nodeMB: 600, treeMB: 1536, p99ms: 100, analysisPct: 10 };

const box = json(join(run, 'box.json'));
const gt = json(join(lecDir, 'groundtruth.json'));
const duration = gt?.duration ?? box?.duration_s;
const kt = json(join(run, 'kolibri-time.json'));
const kFile = join(run, 'kolibri.mp4');
const kolibri = kt && existsSync(kFile) ? {
  wall_s: kt.wall_s, x_realtime: Math.round((duration / kt.wall_s) * 100) / 100,
  bytes: statSync(kFile).size, mb_per_min: Math.round((statSync(kFile).size / 1e6 / (duration / 60)) * 1000) / 1000,
  peak_rss_mb: Math.round(kt.peak_rss_kb / 1024),
} : null;

/** The referee's figures, plus SSIM over the real footage alone (its segments are 'motion'). */
function scoreOf(p) {
  const d = json(p);
  if (!d) return null;
  const corpus = new Set((gt?.segments ?? []).filter((s) => s.source === 'corpus').map((s) => s.id));
  const frames = new Map((gt?.segments ?? []).map((s) => [s.id, s.frames]));
  let w = 0; let sum = 0;
  for (const s of d.ssim?.per_segment ?? []) if (corpus.has(s.id)) { w += frames.get(s.id); sum += s.all * frames.get(s.id); }
  return {
    mb_per_min: d.mb_per_min, total_bytes: d.total_bytes, ocr_ratio: d.ocr?.word_acc_ratio ?? null,
    ocr_word_acc: d.ocr?.candidate?.all?.word_acc ?? null, stoi: d.speech?.stoi ?? null, audio_offset_ms: d.speech?.audio_offset_ms ?? null,
    ssim_all: d.ssim?.all ?? null,
    ssim_by_kind: Object.fromEntries(Object.entries(d.ssim?.per_kind ?? {}).map(([k, v]) => [k, v.all])),
    ssim_real_footage: w ? Math.round((sum / w) * 1e5) / 1e5 : null,
    scorer_timing_s: d.timing_s ?? d.timing ?? null,
  };
}
const scores = { yachay: scoreOf(join(run, 'score-yachay.json')), kolibri: scoreOf(join(run, 'score-kolibri.json')) };

const mem = (key) => Number(/(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8').split('\n').find((l) => l.startsWith(key)) ?? '')?.[1] ?? 0);
const machine = {
  date: text(join(run, 'date')) ?? new Date().toISOString(),
  nproc: availableParallelism(),
  cpu: /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? null,
  mem_total_mb: Math.round(totalmem() / 2 ** 20),
  mem_available_mb_end: Math.round(mem('MemAvailable:') / 1024),
  load_start: text(join(run, 'load-start'))?.split(' ').slice(0, 3).map(Number) ?? null,
  load_end: text(join(run, 'load-end'))?.split(' ').slice(0, 3).map(Number) ?? null,
  node: process.version,
  ffmpeg: sh('ffmpeg', ['-version'])?.split('\n')[0] ?? null,
  commit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
  dirty: (sh('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']) ?? '') !== '',
};
const pieces = gt?.pieces ?? [];
const lecture = {
  dir: lecDir, duration_s: duration, minutes: duration / 60, bytes: statSync(join(lecDir, 'lecture.mp4')).size,
  pieces: pieces.map((p) => `${p.name}@${p.start}-${p.end}`),
  real_footage_s: pieces.filter((p) => p.kind === 'corpus').reduce((s, p) => s + p.end - p.start, 0),
};

/** Shots published under their floor (the optimizer's own measure), by kind, with the seconds they cover. */
function missLine(misses) {
  if (!Array.isArray(misses)) return '';
  if (!misses.length) return ' · no misses';
  const by = {};
  for (const m of misses) { by[m.kind] ??= { n: 0, s: 0 }; by[m.kind].n++; by[m.kind].s += (m.end ?? 0) - (m.start ?? 0); }
  return ` · misses: ${Object.entries(by).map(([k, v]) => `${k} ${v.n} (${v.s.toFixed(0)} s)`).join(', ')}`;
}
const met = (ok) => (ok === null ? '' : ok ? 'yes' : 'NO');
const lat = box?.latency ?? {};
const goals = box ? {
  x_realtime: { goal: `≥ ${GOALS.xRealtime}`, value: box.x_realtime, met: box.status === 'ready' && box.x_realtime >= GOALS.xRealtime },
  node_peak_mb: { goal: `≤ ${GOALS.nodeMB}`, value: box.memory.node_peak_mb, met: box.memory.node_peak_mb <= GOALS.nodeMB },
  tree_peak_mb: { goal: `≤ ${GOALS.treeMB}`, value: box.memory.tree_peak_mb, met: box.memory.tree_peak_mb <= GOALS.treeMB },
  health_p99_ms: { goal: `≤ ${GOALS.p99ms}`, value: lat.health?.p99_ms, met: lat.health?.p99_ms <= GOALS.p99ms && lat.health?.failures === 0 },
  segment_p99_ms: { goal: `≤ ${GOALS.p99ms}`, value: lat.segment?.p99_ms, met: lat.segment?.p99_ms <= GOALS.p99ms && lat.segment?.failures === 0 },
  analysis_models_pct_of_encode: { goal: `≤ ${GOALS.analysisPct}`, value: box.analysis_models_pct_of_encode, met: box.analysis_models_pct_of_encode <= GOALS.analysisPct },
} : {};

const out = { bench: 'bench:long', machine, lecture, yachay: box, kolibri, scores, goals };
writeFileSync(outJson, JSON.stringify(out, null, 1));

// ---------------------------------------------------------------- the table
const L = [];
L.push(`bench:long — ${f(lecture.minutes, 1)} min lesson (${pieces.length} pieces: ${[...new Set(pieces.map((p) => p.name))].join(', ')}` +
  `${lecture.real_footage_s ? `; ${f(lecture.real_footage_s / 60, 1)} min real footage` : '; no real footage'}), ${(lecture.bytes / 1e6).toFixed(0)} MB`);
L.push(`${machine.date} · ${machine.nproc} × ${machine.cpu} · ${(machine.mem_total_mb / 1024).toFixed(0)} GiB (${(machine.mem_available_mb_end / 1024).toFixed(1)} GiB free at the end)` +
  ` · load ${machine.load_start?.join(' ') ?? '?'} → ${machine.load_end?.join(' ') ?? '?'} · ${machine.commit}${machine.dirty ? '+dirty' : ''} · Node ${machine.node}`);
L.push('');
if (box) {
  L.push(`yachay: lesson ${box.status}${box.error ? ` (${box.error})` : ''} · ${box.shots ?? '?'} shots · ${box.attempts ?? '?'} encode attempt(s)` +
    `${missLine(box.misses)} · upload ${f(box.upload_s, 1)} s · box stop ${f(box.box_stop_s, 1)} s, exit ${box.box_exit?.code}`);
  L.push(`stages (ms): ${Object.entries(box.timings_ms ?? {}).map(([k, v]) => `${k} ${v}`).join(' · ')}`);
  if (box.reencodes?.length) L.push(`re-encodes: ${box.reencodes.map((r) => `#${r.attempt} ${r.whole ? `whole (${r.whole})` : `${r.segments} of ${r.of} segments`}`).join(' · ')}`);
  if (box.gave_up?.length) L.push(`given up: ${box.gave_up.map((g) => `${g.kind} shot ${g.shot ?? '-'} after #${g.attempt}: ${g.reason}`).join(' · ')}`);
  L.push('');
}
L.push('| measure | yachay | kolibri_lowres | goal | met |');
L.push('|---|---|---|---|---|');
const row = (name, y, k, goal = '', ok = null) => L.push(`| ${name} | ${y} | ${k} | ${goal} | ${met(ok)} |`);
const ks = scores.kolibri; const ys = scores.yachay;
if (box) {
  row('wall time', `${f(box.wall_s, 1)} s`, kolibri ? `${f(kolibri.wall_s, 1)} s` : '–');
  row('× real time', f(box.x_realtime), f(kolibri?.x_realtime), goals.x_realtime.goal, goals.x_realtime.met);
  row('MB/min (lowest full rendition: v0 + Opus)', f(box.lowest_mb_per_min, 3), f(kolibri?.mb_per_min, 3));
  row('Node RSS peak (idle before upload)', `${box.memory.node_peak_mb} MB (${box.memory.node_idle_mb})`, '–', `${goals.node_peak_mb.goal} MB`, goals.node_peak_mb.met);
  row('process tree RSS peak', `${box.memory.tree_peak_mb} MB`, kolibri ? `${kolibri.peak_rss_mb} MB` : '–', `${goals.tree_peak_mb.goal} MB`, goals.tree_peak_mb.met);
  for (const [k, name] of [['health', '/health'], ['segment', 'segment']]) {
    const l = lat[k];
    row(`${name} p50 / p99 / max (failures of n)`, `${f(l?.p50_ms, 1)} / ${f(l?.p99_ms, 1)} / ${f(l?.max_ms, 0)} ms (${l?.failures} of ${l?.requests})`, '–', `p99 ${goals[`${k}_p99_ms`].goal} ms`, goals[`${k}_p99_ms`].met);
  }
  const loop = lat.box_event_loop;
  if (loop) row('box event-loop delay p50 / p99 / max (its own view)', `${f(loop.p50_ms, 1)} / ${f(loop.p99_ms, 1)} / ${f(loop.max_ms, 0)} ms`, '–');
  row('analysis + models / encode', `${f(box.analysis_models_pct_of_encode, 1)}% (${f(box.analysis_models_ms / 1000, 1)} s / ${f(box.encode_ms / 1000, 1)} s)`, '–', `${goals.analysis_models_pct_of_encode.goal}%`, goals.analysis_models_pct_of_encode.met);
}
if (ys || ks) {
  row('referee MB/min', f(ys?.mb_per_min, 3), f(ks?.mb_per_min, 3));
  row('OCR ratio', f(ys?.ocr_ratio, 3), f(ks?.ocr_ratio, 3));
  row('STOI', f(ys?.stoi, 3), f(ks?.stoi, 3));
  const kinds = [...new Set([...Object.keys(ys?.ssim_by_kind ?? {}), ...Object.keys(ks?.ssim_by_kind ?? {})])].sort();
  for (const kd of kinds) row(`SSIM ${kd}`, f(ys?.ssim_by_kind?.[kd], 3), f(ks?.ssim_by_kind?.[kd], 3));
  if (ys?.ssim_real_footage !== null || ks?.ssim_real_footage !== null) row('SSIM real footage alone', f(ys?.ssim_real_footage, 3), f(ks?.ssim_real_footage, 3));
} else {
  L.push('| scores | not measured (SCORE=0) | | | |');
}
L.push('');
for (const k of ['health', 'segment']) {
  const st = lat[k]?.stalls ?? [];
  if (st.length) L.push(`${k} answers ≥ 0.5 s (at s into the job, stage): ${st.map((x) => `${x.at_s} s ${x.ms} ms (${x.stage ?? '?'})`).join(', ')}`);
}
if (box && kolibri) {
  L.push(`Yachay = ${f(box.lowest_mb_per_min / kolibri.mb_per_min, 2)}× Kolibri's bytes per minute, at ${f(box.x_realtime / kolibri.x_realtime, 2)}× its speed` +
    ` (Kolibri encodes one 480p rendition; Yachay analyses, encodes two video renditions, Opus and AAC, verifies and publishes)`);
}
L.push(`figures: ${outJson}`);
process.stdout.write(L.join('\n') + '\n');
