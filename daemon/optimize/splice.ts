import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { YachayError } from '../errors.js';
import { VIDEO_DELAY_FRAMES, runGraph, simulateSelect, windowArgs } from './encode.js';
import { run } from '../media/run.js';
import { firstPts, readFragment, readInit, retimeFragment, withSampleDurations } from './fmp4.js';
import type { InitInfo } from './fmp4.js';
import { readMediaPlaylist } from '../quality/hls-window.js';
import type { Plan } from './plan.js';

/**
 * A missed floor used to re-encode the whole lowest rendition (14 minutes for an hour). Here
 * only the segments that hold the changed shots are encoded again, each on its own from the
 * source, and put in place of the old files: the playlist, the init section and every other
 * segment stay byte for byte what they were. That holds because
 * - each segment of ours starts with an IDR frame and its GOPs are closed (x264's default), so
 *   nothing outside it refers to its frames;
 * - the stretch is encoded with the same x264 settings and the same header QP, so its parameter
 *   sets (avcC) are the init section's: checked, and refused otherwise;
 * - its fragment is moved on the timeline so its first frame is presented exactly when the
 *   old one was, and its last frame ends before the next segment's first.
 */
export interface SegmentSpan {
  file: string;
  /** source seconds of the segment's first frame, and of the next segment's (or the end) */
  from: number;
  to: number;
  /** the old fragment's first presentation time and sequence number */
  pts: number;
  sequence: number;
  /** its first and last decode times (a new fragment's must fit between the neighbours') */
  firstDts: number;
  lastDts: number;
  /** its latest presentation time */
  lastPts: number;
}

export interface RenditionSpans { init: InitInfo; spans: SegmentSpan[] }

/**
 * Where the encode's frame clock starts: the fps filter puts the first frame at the video's
 * start time (after the file's), rounded to the frame grid; x264's two-frame delay is counted
 * from there, so a segment's first frame is presented at t + VIDEO_DELAY_FRAMES/fps − that.
 */
export async function firstFrameTime(input: string, baseFps: number, signal?: AbortSignal): Promise<number> {
  const out = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=start_time:format=start_time', '-of', 'json', input], { signal });
  const j = JSON.parse(out.stdout) as { streams?: Array<{ start_time?: string }>; format?: { start_time?: string } };
  const v = Number(j.streams?.[0]?.start_time ?? 0); const f = Number(j.format?.start_time ?? 0);
  const rel = Number.isFinite(v - f) ? Math.max(0, v - f) : 0;
  return Math.round(rel * baseFps) / baseFps;
}

/**
 * The segments of the rendition `rid` that `plan` encoded, with the source time of each one's
 * first frame. A frame is presented x264's delay after its time (the fMP4 has no edit list),
 * except that a segment's keyframe can be presented earlier, right after the frame before it
 * (ffmpeg clamps it there): so the time is the first frame the plan selected at or after it.
 */
export async function segmentSpans(dir: string, plan: Plan, rid: string, firstFrame = 0): Promise<RenditionSpans> {
  const pl = await readMediaPlaylist(join(dir, 'index.m3u8'));
  if (!pl) throw new YachayError('YCH_ERR_IO', `${dir}: not a rendition with an init section`);
  const r = plan.renditions.find((x) => x.id === rid);
  if (!r) throw new YachayError('YCH_ERR_IO', `the plan has no rendition ${rid}`);
  const init = readInit(await readFile(join(dir, pl.init)));
  const F = plan.baseFps;
  const selected: number[] = [];
  simulateSelect(plan, r, undefined, selected);
  const spans: SegmentSpan[] = [];
  let k = 0;
  for (const s of pl.segments) {
    const f = readFragment(await readFile(join(dir, s.file)));
    const pts = firstPts(f);
    const shown = (pts / init.timescale + firstFrame) - VIDEO_DELAY_FRAMES / F;
    while (k < selected.length && selected[k]! < shown - 0.25 / F) k++;
    const from = selected[k] ?? Math.round(shown * F) / F;
    spans.push({ file: s.file, from, to: plan.duration, pts, sequence: f.sequence, firstDts: f.baseDts, lastDts: f.samples[f.samples.length - 1]?.dts ?? f.baseDts, lastPts: Math.max(...f.samples.map((x) => x.pts)) });
  }
  // a segment ends where the next one's keyframe is shown: frames after that would overlap it
  for (let i = 0; i + 1 < spans.length; i++) {
    const next = spans[i + 1]!;
    spans[i]!.to = Math.min(next.from, Math.ceil(((next.pts / init.timescale + firstFrame) - VIDEO_DELAY_FRAMES / F) * F - 1e-6) / F);
  }
  return { init, spans };
}

/** Indexes of the segments that show any part of the given stretches. */
export function segmentsCovering(spans: readonly SegmentSpan[], ranges: ReadonlyArray<{ start: number; end: number }>): number[] {
  const out: number[] = [];
  spans.forEach((s, i) => {
    if (ranges.some((r) => s.from < r.end - 1e-6 && s.to > r.start + 1e-6)) out.push(i);
  });
  return out;
}

/** Shots whose settings differ between two plans of the same rendition. */
export function changedShots(before: Plan, after: Plan, rid: string): Array<{ start: number; end: number; index: number }> {
  const a = before.renditions.find((r) => r.id === rid); const b = after.renditions.find((r) => r.id === rid);
  if (!a || !b) return [];
  return after.shots.filter((_, i) => a.shots[i]?.fps !== b.shots[i]?.fps || a.shots[i]?.qp !== b.shots[i]?.qp)
    .map((s) => ({ start: s.start, end: s.end, index: s.index }));
}

export interface SpliceOptions {
  preset: string;
  threads: number;
  /** the header QP of the encode that wrote the rendition's init section (encode.ts headerQp) */
  headerQp: number;
  signal?: AbortSignal | undefined;
  /** where each replaced file is moved (same relative path), so a worse attempt can be undone */
  keepDir: string;
  onSegment?: ((done: number, total: number) => void) | undefined;
  /** filled as files are replaced (relative to the package): what to undo, even after a throw */
  replaced: string[];
}

export class SpliceRefused extends YachayError {
  constructor(why: string) { super('YCH_ERR_ENCODE_REFUSED', `segments cannot be spliced: ${why}`); }
}

/**
 * Re-encodes segments `indices` of rendition `rid` in package folder `pkgDir` with `plan`.
 * The replaced paths go to opts.replaced (their old files are under keepDir). Throws
 * SpliceRefused when a new segment would not fit (that segment is then left as it was).
 */
export async function spliceSegments(before: Plan, plan: Plan, input: string, pkgDir: string, rid: string, indices: readonly number[], opts: SpliceOptions): Promise<void> {
  const r = plan.renditions.find((x) => x.id === rid);
  if (!r) throw new SpliceRefused(`no rendition ${rid}`);
  const dir = join(pkgDir, rid);
  const firstFrame = await firstFrameTime(input, plan.baseFps, opts.signal);
  const { init, spans } = await segmentSpans(dir, before, rid, firstFrame);
  if (!init.avcC) throw new SpliceRefused('the init section has no avcC');
  const work = join(pkgDir, `.splice-${rid}`);
  const replaced = opts.replaced;
  try {
    let done = 0;
    for (const i of indices) {
      const span = spans[i];
      if (!span) throw new SpliceRefused(`no segment ${i}`);
      await rm(work, { recursive: true, force: true });
      await mkdir(work, { recursive: true });
      const args = windowArgs(plan, r, input, work, { from: span.from, to: span.to }, { preset: opts.preset, threads: opts.threads, qp: opts.headerQp });
      await runGraph(args, join(work, '.filter_complex.txt'), { signal: opts.signal });
      const got = readInit(await readFile(join(work, 'init.mp4')));
      if (got.timescale !== init.timescale) throw new SpliceRefused(`timescale ${got.timescale} ≠ ${init.timescale}`);
      if (!got.avcC || !got.avcC.equals(init.avcC)) throw new SpliceRefused('the parameter sets (avcC) differ from the init section');
      const pl = await readMediaPlaylist(join(work, 'index.m3u8'));
      if (pl?.segments.length !== 1) throw new SpliceRefused(`the stretch made ${pl?.segments.length ?? 0} segments, not 1`);
      const buf = withSampleDurations(await readFile(join(work, pl.segments[0]!.file)));
      const f = readFragment(buf);
      if (!f.samples[0]?.key) throw new SpliceRefused('the new segment does not start with a keyframe');
      const prev = spans[i - 1]; const next = spans[i + 1];
      // the new keyframe is shown at its own time (the old one may have been clamped earlier)
      const keyPts = Math.round((span.from - firstFrame + VIDEO_DELAY_FRAMES / plan.baseFps) * init.timescale);
      const moved = retimeFragment(buf, { firstPts: keyPts, keyShownAt: span.pts, sequence: span.sequence, after: prev ? prev.lastDts : -1, before: next ? next.firstDts : Number.MAX_SAFE_INTEGER });
      if (!moved) throw new SpliceRefused(`segment ${span.file}: the new frames do not fit between its neighbours' decode times`);
      const check = readFragment(moved);
      if (firstPts(check) !== span.pts || (prev !== undefined && firstPts(check) <= prev.lastPts)) throw new SpliceRefused('the new segment does not start where the old one did');
      if (next && Math.max(...check.samples.map((s) => s.pts)) >= next.pts) throw new SpliceRefused(`segment ${span.file} would run into the next one`);
      // a following segment spliced next must come after this one's decode times
      span.firstDts = check.baseDts; span.lastDts = check.samples[check.samples.length - 1]!.dts;
      span.lastPts = Math.max(...check.samples.map((x) => x.pts));
      const rel = join(rid, span.file);
      const kept = join(opts.keepDir, rel);
      await mkdir(dirname(kept), { recursive: true });
      await writeFile(join(dir, `.${span.file}.new`), moved);
      await rename(join(dir, span.file), kept);
      await rename(join(dir, `.${span.file}.new`), join(dir, span.file));
      replaced.push(rel);
      opts.onSegment?.(++done, indices.length);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
