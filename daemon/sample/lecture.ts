import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { run } from '../media/run.js';
import { YachayError } from '../errors.js';
import { exists, fsyncFile } from '../util/atomic.js';
import { CONTENT } from './content.js';
import type { Lang, SegmentKind } from './content.js';

/**
 * Builds a short lecture from nothing but ffmpeg and espeak-ng: slides, a talking head, a
 * board being written, a motion demo with music, and narration. The quick start and the tests
 * use it, so the project never depends on a downloaded video.
 */
export interface SampleOptions {
  seconds: number;
  lang: Lang;
  signal?: AbortSignal | undefined;
  /** keep an existing file instead of building it again */
  reuse?: boolean;
  /** which segments, in order (default: the whole lecture) */
  kinds?: SegmentKind[];
}

const W = 1280; const H = 720; const FPS = 30;
const LIFE_SETTLE = 8;
const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
const FONT_BOLD = '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf';

/** share of the lecture each kind gets */
const WEIGHT: Record<SegmentKind, number> = { title: 0.1, slide: 0.18, talking_head: 0.15, board: 0.15, motion: 0.1, summary: 0.14 };
const DEFAULT_ORDER: SegmentKind[] = ['title', 'slide', 'talking_head', 'board', 'slide', 'motion', 'summary'];

function font(bold = false): string {
  const f = bold ? FONT_BOLD : FONT;
  return existsSync(f) ? `fontfile=${f}` : 'font=Sans';
}

/** One narration clip (exported for the runner tests: espeak-ng under abort and kill -9). */
export async function speak(text: string, lang: Lang, out: string, signal?: AbortSignal): Promise<void> {
  const { stderr } = await run('espeak-ng', ['-v', lang === 'es' ? 'es-419' : 'en-us', '-s', '150', '-w', out, text], { signal });
  // espeak-ng exits 0 even when it cannot write the file: only the file tells
  if (!existsSync(out)) {
    throw new YachayError('YCH_ERR_ESPEAK_FAILED', `espeak-ng wrote no sound to ${out}: ${stderr.trim() || 'no message'}`);
  }
}

function textLayer(file: string, size: number, x: number | string, y: number | string, color: string, bold = false, enable?: string): string {
  return `drawtext=${font(bold)}:textfile=${file}:fontsize=${size}:fontcolor=${color}:x=${x}:y=${y}` + (enable ? `:enable='${enable}'` : '');
}

async function videoGraph(kind: SegmentKind, dur: number, dir: string, idx: number, lang: Lang, slideNo: number): Promise<string> {
  const c = CONTENT[lang];
  const put = async (name: string, text: string): Promise<string> => {
    const p = join(dir, `t${idx}-${name}.txt`);
    await writeFile(p, text);
    return p;
  };
  switch (kind) {
    case 'title':
    case 'summary':
    case 'slide': {
      const s = kind === 'title' ? c.title : kind === 'summary' ? c.summary : c.slides[slideNo % c.slides.length]!;
      const dark = kind === 'title';
      const fg = dark ? 'white' : '0x202020';
      const layers = [textLayer(await put('h', s.heading), kind === 'title' ? 64 : 52, 80, 70, fg, true)];
      for (const [i, line] of s.lines.entries()) layers.push(textLayer(await put(`l${i}`, line), 36, 110, 200 + i * 70, fg));
      if (s.footnote) layers.push(textLayer(await put('f', s.footnote), 24, 80, H - 70, dark ? '0xc0c0c0' : '0x505050'));
      return `color=c=${dark ? '0x1c2a4a' : '0xfafaf5'}:s=${W}x${H}:r=${FPS}:d=${dur},${layers.join(',')},format=yuv420p`;
    }
    case 'board': {
      const layers = [textLayer(await put('h', c.board.heading), 44, 80, 60, '0x1a3f8f', true)];
      // one line appears at a time, as a teacher writes it
      for (const [i, line] of c.board.lines.entries()) {
        const at = ((i + 1) * dur) / (c.board.lines.length + 1.5);
        layers.push(textLayer(await put(`l${i}`, line), 40, 110, 170 + i * 80, '0x202020', false, `gte(t,${at.toFixed(2)})`));
      }
      return `color=c=0xf0f0e8:s=${W}x${H}:r=${FPS}:d=${dur},${layers.join(',')},noise=alls=3:allf=t,format=yuv420p`;
    }
    case 'talking_head': {
      const name = await put('n', c.presenter);
      const head = await put('head', '\u25cf');
      return `gradients=s=${W}x${H}:r=${FPS}:d=${dur}:nb_colors=2:c0=0x6a5a4a:c1=0x3e4450:speed=0.04,gblur=sigma=6,` +
        `drawtext=${font()}:textfile=${head}:fontsize=420:fontcolor=0xd9a27a:x='460+50*sin(t*1.2)':y='110+12*sin(t*2.1)',` +
        `drawbox=x=0:y=${H - 120}:w=${W}:h=80:color=0x000000@0.6:t=fill,` +
        `${textLayer(name, 34, 40, H - 100, 'white')},noise=alls=3:allf=t,format=yuv420p`;
    }
    case 'motion':
      // Game of Life in 4-pixel cells: every frame changes, as in a screen-recorded demo; its first
      // seconds are chaos from the random start, so the clip begins once the colony has settled
      return `life=s=${W / 4}x${H / 4}:r=${FPS}:ratio=0.25:mold=10:life_color=0x30d040:death_color=0x101018:mold_color=0x305030:seed=7,` +
        `scale=${W}:${H}:flags=neighbor,trim=start=${LIFE_SETTLE}:duration=${dur},setpts=PTS-STARTPTS,format=yuv420p`;
  }
}

export function segmentDurations(seconds: number, kinds: SegmentKind[]): number[] {
  const total = kinds.reduce((s, k) => s + WEIGHT[k], 0);
  return kinds.map((k) => Math.max(2, Math.round(((seconds * WEIGHT[k]) / total) * 10) / 10));
}

export async function makeSampleLecture(out: string, opts: SampleOptions): Promise<void> {
  if (opts.reuse && await exists(out)) return;
  if (!Number.isFinite(opts.seconds) || opts.seconds < 4 || opts.seconds > 1800) {
    throw new YachayError('YCH_ERR_USAGE', `--seconds must be between 4 and 1800 (got ${opts.seconds})`);
  }
  const kinds = opts.kinds ?? DEFAULT_ORDER;
  const durs = segmentDurations(opts.seconds, kinds);
  const work = await mkdtemp(join(tmpdir(), 'yachay-sample-'));
  try {
    const list: string[] = [];
    let slideNo = 0;
    for (const [i, kind] of kinds.entries()) {
      const dur = durs[i]!;
      const wav = join(work, `s${i}.wav`);
      await speak(CONTENT[opts.lang].speech[kind] ?? '', opts.lang, wav, opts.signal);
      const graph = await videoGraph(kind, dur, work, i, opts.lang, slideNo);
      if (kind === 'slide') slideNo++;
      // speech starts after a short pause; the motion demo has music under it
      const speech = `[1:a]aresample=48000,adelay=400:all=1,apad,atrim=0:${dur}[sp]`;
      const audio = kind === 'motion' || kind === 'title'
        ? `${speech};sine=f=262:r=48000:d=${dur},volume=0.03[m1];sine=f=392:r=48000:d=${dur},volume=0.02[m2];[sp][m1][m2]amix=inputs=3:normalize=0,atrim=0:${dur}[a]`
        : `${speech};[sp]anull[a]`;
      const seg = join(work, `seg${i}.mp4`);
      await run('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', graph, '-i', wav,
        '-filter_complex', audio, '-map', '0:v', '-map', '[a]', '-t', String(dur),
        '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '18', '-g', String(FPS * 2), '-pix_fmt', 'yuv420p',
        '-c:a', 'aac', '-b:a', '128k', '-ac', '1', '-ar', '48000', seg], { signal: opts.signal });
      list.push(`file '${seg}'`);
    }
    const listFile = join(work, 'list.txt');
    await writeFile(listFile, list.join('\n') + '\n');
    await mkdir(dirname(out), { recursive: true });
    const tmpOut = join(dirname(out), `.tmp-${process.pid}-${Date.now()}.mp4`);
    try {
      await run('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-y', '-f', 'concat', '-safe', '0', '-i', listFile,
        '-c', 'copy', '-movflags', '+faststart', tmpOut], { signal: opts.signal });
      await fsyncFile(tmpOut);
      await rename(tmpOut, out);
    } finally {
      await rm(tmpOut, { force: true });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
