// The lecture half of `npm run bench:long` (test/bench/long.sh): MINUTES of camera-like lecture
// (1280x720, 30 fps, H.264 CRF 20, AAC 48 kHz mono) cycled from generated lectures
// (shared/eval/make-lecture.sh) and, when test/corpus/build.sh exists, real footage from its
// corpus; with one groundtruth.json for the whole file, so shared/eval/score.sh scores it.
// Prints the folder holding lecture.mp4 + groundtruth.json on stdout.
//
// Everything is cached under BENCH_DIR: each generated lecture, each piece normalised to the
// common format, and the joined file keyed by MINUTES and the piece list.
//   MINUTES=60  LECTURES="es:1 en:2 es:3 en:4 es:5 en:6"  CORPUS=0 (skip real footage)
//   CORPUS_MAX_S=300 (longest stretch taken from one real clip)
//   YACHAY_CORPUS=~/.cache/yachay-corpus (its corpus.json lists the clips: file, kind, ...)
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const MINUTES = Number(process.env.MINUTES ?? 60);
const OUT = process.env.BENCH_DIR ?? '/tmp/yachay-bench-long';
const EVAL = process.env.EVAL_DIR ?? resolve(ROOT, '..', 'shared', 'eval');
const LECTURES = (process.env.LECTURES ?? 'es:1 en:2 es:3 en:4 es:5 en:6').split(/\s+/).filter(Boolean);
const CORPUS_DIR = process.env.YACHAY_CORPUS ?? join(process.env.HOME ?? '/root', '.cache', 'yachay-corpus');
const CORPUS_MAX_S = Number(process.env.CORPUS_MAX_S ?? 300);
const FPS = 30; const SR = 48000;
// bump when the normalisation or the join changes, so cached files are rebuilt
const VERSION = 2;
const log = (m) => process.stderr.write(`[lecture] ${m}\n`);
if (!(MINUTES > 0)) throw new Error(`MINUTES must be a positive number (got ${process.env.MINUTES})`);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${(r.stderr ?? '').slice(-2000)}`);
  return r.stdout;
}
const probe = (file) => JSON.parse(run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_type,nb_frames,duration', '-of', 'json', file]));

// ---------------------------------------------------------------- the pieces
async function lecturePiece(spec) {
  const [lang, seed] = spec.split(':');
  const dir = join(OUT, 'pieces', `${lang}-${seed}`);
  if (!existsSync(join(dir, 'groundtruth.json'))) {
    log(`making lecture ${lang}-${seed} (~2.5 min, once)`);
    await rm(dir, { recursive: true, force: true });
    run(join(EVAL, 'make-lecture.sh'), [dir, lang, seed], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const gt = JSON.parse(readFileSync(join(dir, 'groundtruth.json'), 'utf8'));
  return { name: `${lang}-${seed}`, kind: 'lecture', file: join(dir, 'lecture.mp4'), duration: gt.frames / FPS, gt, lang };
}

function corpusPieces() {
  if (process.env.CORPUS === '0') return { pieces: [], note: 'real footage skipped (CORPUS=0)' };
  const build = join(ROOT, 'test', 'corpus', 'build.sh');
  const list = join(CORPUS_DIR, 'corpus.json');
  // a corpus already built is used as is; otherwise the script builds it, when there is one
  if (!existsSync(list) && !existsSync(build)) return { pieces: [], note: `real footage skipped: no ${list} and no ${build} to build it` };
  if (!existsSync(list)) {
    log(`building the real-footage corpus: bash ${build}`);
    const r = spawnSync('bash', [build], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, YACHAY_CORPUS: CORPUS_DIR } });
    if (r.status !== 0 || !existsSync(list)) return { pieces: [], note: `real footage skipped: test/corpus/build.sh exited ${r.status} without ${list}` };
  }
  const doc = JSON.parse(readFileSync(list, 'utf8'));
  // the corpus format is another engineer's: accept a list, or an object holding one
  const items = Array.isArray(doc) ? doc : Object.values(doc).find((v) => Array.isArray(v)) ?? [];
  const pieces = [];
  for (const it of items) {
    if (!it || typeof it.file !== 'string') continue;
    const file = isAbsolute(it.file) ? it.file : join(CORPUS_DIR, it.file);
    if (!existsSync(file)) continue;
    let info;
    try { info = probe(file); } catch { continue; }
    if (!info.streams?.some((s) => s.codec_type === 'video')) continue;
    // the video's own length: a container's duration may be the longer audio
    const v = info.streams.find((s) => s.codec_type === 'video');
    const dur = Math.min(CORPUS_MAX_S, Number(v.duration ?? info.format?.duration ?? 0));
    if (!(dur >= 2)) continue;
    pieces.push({ name: `corpus-${basename(file).replace(/\.[^.]+$/, '')}`, kind: 'corpus', file, duration: Math.floor(dur * FPS + 1e-3) / FPS,
      corpusKind: it.kind ?? null, hasAudio: info.streams.some((s) => s.codec_type === 'audio') });
  }
  return { pieces, note: pieces.length ? `${pieces.length} real clips from ${list}` : `real footage skipped: no usable clip in ${list}` };
}

/**
 * One piece in the common format, `seconds` long exactly (a whole number of frames, and of
 * audio samples: 1600 per frame). Audio stays PCM here and is encoded once when the pieces are
 * joined: AAC pieces joined by stream copy would each bring their own priming and padding, and
 * speech would drift from the ground truth by ~20 ms per join.
 */
function normalised(piece, seconds) {
  const frames = Math.round(seconds * FPS);
  const dir = join(OUT, 'norm');
  const out = join(dir, `${piece.name}-${frames}f-v${VERSION}.mov`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  log(`normalising ${piece.name} (${(frames / FPS).toFixed(1)} s)`);
  const tmp = out + '.tmp.mov';
  const noAudio = piece.kind === 'corpus' && !piece.hasAudio;
  const samples = frames * (SR / FPS);
  // both lengths are set by the filters, not by -frames:v (reaching it closes the whole output,
  // audio included, wherever the audio encoder was) nor -t; the input -t only bounds the decode
  run('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-t', (frames / FPS + 1).toFixed(3), '-i', piece.file,
    ...(noAudio ? ['-f', 'lavfi', '-i', `anullsrc=r=${SR}:cl=mono`] : []),
    '-map', '0:v:0', '-map', noAudio ? '1:a:0' : '0:a:0',
    '-vf', `scale=1280:720:force_original_aspect_ratio=decrease:flags=bicubic,pad=1280:720:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=${FPS},` +
      `tpad=stop=-1:stop_mode=clone,trim=end_frame=${frames},format=yuv420p`,
    // first_pts=0: a clip whose audio starts late gets silence in front, not a shift
    '-af', `aresample=${SR}:async=1:first_pts=0,aformat=channel_layouts=mono,apad=whole_len=${samples},atrim=end_sample=${samples}`,
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-g', '60', '-profile:v', 'high',
    '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv',
    '-c:a', 'pcm_s16le', '-ar', String(SR), '-ac', '1', '-video_track_timescale', '15360', tmp]);
  renameSync(tmp, out);
  return out;
}

// ---------------------------------------------------------------- ground truth
const r4 = (x) => Math.round(x * 1e4) / 1e4;
const shiftSpan = (s, off, cut) => {
  if (s.start + off >= cut) return null;
  return { ...s, start: r4(s.start + off), end: r4(Math.min(cut, s.end + off)) };
};

function shiftedTruth(piece, off, cut, nextId) {
  const gt = piece.gt;
  const ids = new Map();
  const segments = [];
  for (const seg of gt.segments) {
    const s = shiftSpan(seg, off, cut);
    if (!s) continue;
    ids.set(seg.id, nextId + segments.length);
    s.id = nextId + segments.length;
    s.duration = r4(s.end - s.start);
    s.frames = Math.round(s.duration * FPS);
    // an OCR frame must exist in the cut file: keep those at least half a second before the end
    if (seg.ocr_times) s.ocr_times = seg.ocr_times.map((t) => r4(t + off)).filter((t) => t < cut - 0.5);
    if (seg.reveal) s.reveal = seg.reveal.map((r) => ({ ...r, t: r4(r.t + off) })).filter((r) => r.t < cut);
    s.piece = piece.name;
    segments.push(s);
  }
  const spans = (list) => (list ?? []).map((x) => {
    const s = shiftSpan(x, off, cut);
    for (const k of ['segment', 'seg', 'segment_id']) if (s && k in s) s[k] = ids.get(x[k]) ?? s[k];
    return s;
  }).filter(Boolean);
  return { segments, speech: spans(gt.speech), music: spans(gt.music), silence: spans(gt.silence) };
}

// ---------------------------------------------------------------- plan, cache, join
const target = Math.round(MINUTES * 60 * FPS) / FPS;
const corpus = corpusPieces();
log(corpus.note);
// generated lectures and real clips take turns, so footage is spread over the whole lesson
const order = [];
for (let i = 0; i < Math.max(LECTURES.length, corpus.pieces.length); i++) {
  if (i < LECTURES.length) order.push({ spec: LECTURES[i] });
  if (i < corpus.pieces.length) order.push({ piece: corpus.pieces[i] });
}
const plan = []; let total = 0;
const built = new Map();
for (let i = 0; total < target - 0.5 / FPS; i++) {
  const o = order[i % order.length];
  let piece = o.piece;
  if (!piece) {
    if (!built.has(o.spec)) built.set(o.spec, await lecturePiece(o.spec));
    piece = built.get(o.spec);
  }
  const seconds = Math.min(piece.duration, Math.round((target - total) * FPS) / FPS);
  if (seconds * FPS < 1) break;
  plan.push({ piece, start: total, seconds });
  total = Math.round((total + seconds) * FPS) / FPS;
}

const keyOf = plan.map((p) => {
  const st = statSync(p.piece.file);
  return [p.piece.name, p.piece.file, st.size, Math.floor(st.mtimeMs), Math.round(p.seconds * FPS)];
});
const key = createHash('sha1').update(JSON.stringify({ VERSION, MINUTES, keyOf })).digest('hex').slice(0, 10);
const dir = join(OUT, `long-${MINUTES}-${key}`);
const lecture = join(dir, 'lecture.mp4');
if (existsSync(join(dir, 'groundtruth.json')) && existsSync(lecture)) {
  log(`reusing ${lecture}`);
  process.stdout.write(dir + '\n');
  process.exit(0);
}
await mkdir(dir, { recursive: true });
const files = plan.map((p) => normalised(p.piece, p.seconds));
const list = join(dir, 'pieces.ffconcat');
await writeFile(list, 'ffconcat version 1.0\n' + plan.map((p, i) =>
  `file '${files[i].replace(/'/g, "'\\''")}'\nduration ${(Math.round(p.seconds * FPS) / FPS).toFixed(6)}\n`).join(''));
log(`joining ${plan.length} pieces into ${(total / 60).toFixed(1)} min`);
const tmp = join(dir, 'lecture.tmp.mp4');
// video by stream copy (every piece has the same x264 settings, so the same parameter sets);
// audio encoded once over the joined PCM
run('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', list,
  '-map', '0:v:0', '-map', '0:a:0', '-c:v', 'copy', '-c:a', 'aac', '-b:a', '128k', '-ar', String(SR), '-ac', '1',
  '-movflags', '+faststart', tmp]);

const langs = [...new Set(plan.filter((p) => p.piece.kind === 'lecture').map((p) => p.piece.lang))];
const first = plan.find((p) => p.piece.kind === 'lecture')?.piece.gt;
const truth = {
  format: 'lecture-groundtruth/1', note: 'joined by yachay test/bench/long-lecture.mjs',
  lang: first?.lang ?? 'es', width: 1280, height: 720, fps: FPS, sample_rate: SR,
  duration: r4(total), frames: Math.round(total * FPS), video: 'lecture.mp4',
  // one OCR model for slides in both languages: source and candidate are read the same way
  ocr_lang: langs.length > 1 ? 'spa+eng' : langs[0] === 'en' ? 'eng' : 'spa',
  pieces: [], segments: [], speech: [], music: [], silence: [],
};
for (const p of plan) {
  const end = r4(p.start + p.seconds);
  truth.pieces.push({ name: p.piece.name, kind: p.piece.kind, file: p.piece.file, start: r4(p.start), end, corpus_kind: p.piece.corpusKind });
  if (p.piece.kind === 'lecture') {
    const g = shiftedTruth(p.piece, p.start, end, truth.segments.length);
    truth.segments.push(...g.segments); truth.speech.push(...g.speech); truth.music.push(...g.music); truth.silence.push(...g.silence);
  } else {
    // real footage has no known text or speech: its span counts for SSIM only, as motion
    truth.segments.push({ id: truth.segments.length, kind: 'motion', start: r4(p.start), end, duration: r4(p.seconds),
      frames: Math.round(p.seconds * FPS), text: '', lines: [], piece: p.piece.name, source: 'corpus', corpus_kind: p.piece.corpusKind });
  }
}
await writeFile(join(dir, 'groundtruth.json'), JSON.stringify(truth, null, 1));
await rename(tmp, lecture);
const info = probe(lecture);
log(`${lecture}: ${Number(info.format.duration).toFixed(2)} s (planned ${total.toFixed(2)} s), ${(statSync(lecture).size / 1e6).toFixed(1)} MB`);
process.stdout.write(dir + '\n');
