import { run } from '../media/run.js';
import { YachayError } from '../errors.js';
import { isPlaylist, playlistInputArgs } from './audio.js';
import { hlsWindow } from './hls-window.js';

/**
 * Picture fidelity of our own encode against its source over a time window, with ffmpeg's
 * `ssim` filter. The hard part is not SSIM but pairing the right frames: our outputs are HLS
 * (fMP4 or MPEG-TS, whose timelines start at 0.13 s or 1.4 s instead of 0), often at a lower
 * frame rate than the source, sometimes VFR. A one-frame slip on a moving talking head costs
 * more SSIM than the codec does, so both inputs are put on the same CFR grid anchored at the
 * first video frame.
 */
export interface SsimOptions {
  /** seconds from the first video frame of each input */
  start: number;
  duration: number;
  /** both inputs are scaled (bicubic) to this size before comparing */
  width: number;
  height: number;
  /** both inputs are retimed to this constant rate (frames held / dropped like a player) */
  fps: number;
  /**
   * also compare this rectangle (pixels of the scaled frame), a region of interest, in the
   * same pass: the result is the region's, with the whole frame's in `frame`
   */
  crop?: { x: number; y: number; w: number; h: number } | undefined;
  signal?: AbortSignal;
}

export interface SsimResult {
  /** Y, U, V weighted by plane size, as ffmpeg reports `All:` */
  all: number;
  /** luma only */
  y: number;
  /** with `crop`: the whole frame, measured in the same pass */
  frame?: { all: number; y: number } | undefined;
}

/**
 * Where the first video frame and the container start sit on the file's own clock. Our
 * outputs do not start at 0: fMP4 HLS starts at ~0.13 s, MPEG-TS at 1.4 s, and there the
 * video may start after the audio (B-frame delay: audio 1.443 s, video 1.467 s). ffmpeg's
 * own zero point depends on which streams a command happens to use, so we read the raw
 * timestamps (-copyts) and anchor each input at its first video frame ourselves.
 */
export async function videoStart(input: string, signal?: AbortSignal): Promise<{ video: number; container: number }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', ...playlistInputArgs(input),
    '-select_streams', 'v:0', '-show_entries', 'format=start_time:stream=start_time',
    '-of', 'json', input], { signal });
  let parsed: { format?: { start_time?: string }; streams?: Array<{ start_time?: string }> };
  try {
    parsed = JSON.parse(stdout) as typeof parsed;
  } catch (err) {
    throw new YachayError('YCH_ERR_INPUT_CORRUPT', `ffprobe gave unreadable output for ${input}`, { cause: err });
  }
  const stream = parsed.streams?.[0];
  if (!stream) throw new YachayError('YCH_ERR_INPUT_NOT_MEDIA', `${input} has no video stream to compare`);
  const container = Number(parsed.format?.start_time);
  const video = Number(stream.start_time);
  const c = Number.isFinite(container) ? container : 0;
  return { container: c, video: Number.isFinite(video) ? video : c };
}

/** `All:0.987 (18.9)` / `Y:0.99 (20.1)` in an ssim filter's summary line on stderr. */
function parseLine(line: string): SsimResult | undefined {
  const y = /\bY:([\d.]+)/.exec(line);
  const all = /\bAll:([\d.]+)/.exec(line);
  if (!y || !all) return undefined;
  return { y: Number(y[1]), all: Number(all[1]) };
}

/**
 * Every ssim filter's summary, in the order the filters appear in the graph: ffmpeg names
 * them `Parsed_ssim_<position>` and prints them when the graph closes, in no promised order.
 */
export function parseSsimSummaries(stderr: string): SsimResult[] {
  const found: Array<[number, SsimResult]> = [];
  for (const line of stderr.split('\n')) {
    const m = /\[Parsed_ssim_(\d+) @[^\]]*\] SSIM Y:/.exec(line);
    const r = m ? parseLine(line) : undefined;
    if (m && r) found.push([Number(m[1]), r]);
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, r]) => r);
}

export async function ssimWindow(source: string, candidate: string, opts: SsimOptions): Promise<SsimResult> {
  const { start, duration, width, height, fps, signal } = opts;
  if (!(duration > 0 && width > 0 && height > 0 && fps > 0 && start >= 0)) {
    throw new YachayError('YCH_ERR_USAGE', `ssimWindow: bad window start=${start} duration=${duration} ${width}x${height}@${fps}`);
  }
  const [startC, startS] = await Promise.all([videoStart(candidate, signal), videoStart(source, signal)]);
  // Everything happens on a grid of 1/fps slots counted from each input's first video frame.
  // The window is snapped to that grid: a start half-way between two frames would let a
  // timestamp jitter of a few microseconds decide which frame a slot shows (a one-frame
  // slip), while on the grid the candidate's frames fall on slots, not between them.
  const k0 = Math.round(start * fps); // first slot compared
  const n = Math.max(1, Math.round(duration * fps)); // slots compared
  const margin = Math.ceil(fps); // ~1 s decoded before the window, then thrown away
  const s0 = Math.max(0, k0 - margin); // slot where decoding starts
  const sec = (x: number): string => x.toFixed(6);
  // one of our own renditions: only the segments around the window are read (ffmpeg 5.1
  // cannot seek in fMP4 HLS, and reading from the top made late shots cost the whole lecture)
  const window = isPlaylist(candidate)
    ? await hlsWindow(candidate, startC.video - startC.container + s0 / fps, startC.video - startC.container + (k0 + n) / fps)
    : undefined;
  const input = (path: string, at: { video: number; container: number }): string[] => isPlaylist(path)
    ? (path === candidate && window ? ['-i', window.path]
      // a playlist that is not ours: read from the top to the window end
      : [...playlistInputArgs(path), '-t', sec(at.video - at.container + (k0 + n) / fps + 1), '-i', path])
    // input -ss (counted from the container start): fast seek into the margin, which absorbs
    // the frames an accurate seek drops and any doubt about ffmpeg's zero point
    : ['-ss', sec(Math.max(0, at.video - at.container + s0 / fps)), '-t', sec((k0 - s0 + n) / fps + 1), '-i', path];
  // setpts puts the first video frame at 0 (0.1 ms early, so the rounded start time printed by
  // ffprobe cannot push it below 0). fps with start_time lays the grid at s0/fps + k/fps and
  // holds the frame on screen at each slot (a low-fps or VFR candidate gets duplicates); the
  // margin gives it the frame already showing when the window opens. trim then counts slots,
  // exact where a cut in seconds would round. setpts=PTS-STARTPTS on raw frames is avoided on
  // purpose: it would snap a 10 fps candidate's first frame onto the source's.
  const chain = (at: { video: number }): string =>
    `setpts=PTS-${sec(at.video - 1e-4)}/TB,fps=${fps}:start_time=${sec(s0 / fps)},`
    + `trim=start_frame=${k0 - s0}:end_frame=${k0 - s0 + n},setpts=PTS-STARTPTS,`
    + `scale=${width}:${height}:flags=bicubic,setsar=1,format=yuv420p`;
  let graph = `[0:v:0]${chain(startC)}[c];[1:v:0]${chain(startS)}[s];`;
  const outs = ['[frame]'];
  if (opts.crop) {
    // one decode for both figures: the frames are split after scaling, one copy cropped
    const crop = `crop=${opts.crop.w}:${opts.crop.h}:${opts.crop.x}:${opts.crop.y}`;
    graph += `[c]split[c1][c2];[s]split[s1][s2];[c1][s1]ssim=shortest=1[frame];[c2]${crop}[cr];[s2]${crop}[sr];[cr][sr]ssim=shortest=1[roi]`;
    outs.push('[roi]');
  } else {
    graph += '[c][s]ssim=shortest=1[frame]';
  }
  const args = ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'info', '-copyts',
    ...input(candidate, startC), ...input(source, startS),
    '-filter_complex', graph, ...outs.flatMap((o) => ['-map', o, '-f', 'null', '-'])];
  let stderr: string;
  try {
    ({ stderr } = await run('ffmpeg', args, { signal }));
  } finally {
    await window?.dispose();
  }
  const res = parseSsimSummaries(stderr);
  if (res.length !== outs.length || res.some((r) => !Number.isFinite(r.all) || !Number.isFinite(r.y))) {
    throw new YachayError('YCH_ERR_FFMPEG_FAILED',
      `ssim gave no summary for ${candidate} at ${start}s+${duration}s (window past the end of a file?)`);
  }
  const [frame, roi] = res as [SsimResult, SsimResult | undefined];
  return roi ? { ...roi, frame } : frame;
}
