import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { rawFrames, run } from '../media/run.js';
import type { MediaInfo } from './probe.js';
import type { NativeKernels } from '../analysis/native.js';
import { PCM_FILE_OUTPUT, pcmFileSamples, type PcmFile } from '../quality/audio.js';

/** Analysis frame size: small enough to decode a lesson in seconds, big enough to see text edges. */
export const ANALYSIS_W = 160;
export const ANALYSIS_H = 90;
/** Audio is analysed at 16 kHz mono in 20 ms frames: the speech band, a syllable's resolution. */
export const AUDIO_RATE = 16000;
export const AUDIO_FRAME = 320;
/** Sobel magnitude above which a pixel counts as an edge (text strokes, board writing). */
export const EDGE_THRESHOLD = 96;

/** Per analysis frame, in time order at `fps`. */
export interface VideoFeatures {
  fps: number;
  /** mean absolute luma difference to the previous analysis frame (0..255) */
  diff: Float32Array;
  si: Float32Array;
  ti: Float32Array;
  edges: Float32Array;
  luma: Float32Array;
  lumaStd: Float32Array;
}

/** Per 20 ms audio frame. */
export interface AudioFeatures {
  frameSec: number;
  rms: Float32Array;
  zcr: Float32Array;
  low: Float32Array;
  high: Float32Array;
  /**
   * the 16 kHz mono samples themselves, for models that listen (speech detection): on disk,
   * read a window at a time, and gone once `dispose` runs (or the job aborts)
   */
  pcmFile?: TempPcm | undefined;
}

export interface TempPcm extends PcmFile {
  /** removes the file; safe to call twice */
  dispose(): Promise<void>;
}

export interface Analysis {
  video?: VideoFeatures | undefined;
  audio?: AudioFeatures | undefined;
}

/**
 * A second picture stream taken from the analysis decode, for a model that looks at whole
 * frames (the face detector): the video is decoded once for both.
 */
export interface FrameTap {
  fps: number;
  /** ffmpeg filters after `fps` (scale, pad…) that end in a packed format of `frameBytes` */
  filters: string;
  frameBytes: number;
  /**
   * each frame, `t` seconds from the start of the video; the bytes are the caller's. Frames come
   * in time order within a `part` (one of the decodes that run side by side over consecutive
   * stretches of the video), not across parts.
   */
  onFrame(t: number, frame: Uint8Array, part: number): void;
}

/** decoder options for analysis passes that sample a few small frames */
export const FAST_DECODE = ['-skip_frame', 'noref', '-skip_loop_filter', 'all'];

const FEATS = 6;
const AFEATS = 5;

/** Grows a Float32Array without re-copying on every push. */
class Column {
  private buf = new Float32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Float32Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = v;
  }
  done(): Float32Array { return this.buf.slice(0, this.length); }
}

export interface AnalyseOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((sec: number) => void) | undefined;
  tap?: FrameTap | undefined;
  /** how many decodes share the video; default: one per core for a long lesson (videoParts) */
  parts?: number | undefined;
}

/** A stretch of the video one decode analyses: [start, end) seconds, the last one open-ended. */
export interface VideoPart {
  start: number;
  end?: number | undefined;
}

/** a stretch shorter than this does not pay for another decoder's start and seek */
export const MIN_PART_S = 60;
const MAX_PARTS = 4;

/**
 * The analysis decode skips the frames nothing refers to, so one decoder keeps about 1.2 of a
 * box's cores busy (its frame threads wait on each other): a 60-minute lesson's decode took
 * 90 s on this 2-core VM. Stretches decoded side by side use every core. Boundaries fall on
 * whole seconds so that the analysis frames (and the tap's) keep the one-decode grid, which
 * needs whole frame rates; any other rate keeps one decode.
 */
export function videoParts(duration: number, fps: number, tapFps: number | undefined, want: number): VideoPart[] {
  const n = Math.max(1, Math.min(MAX_PARTS, Math.floor(want), Math.floor(duration)));
  if (n === 1 || !Number.isInteger(fps) || (tapFps !== undefined && !Number.isInteger(tapFps))) return [{ start: 0 }];
  const cuts = Array.from({ length: n + 1 }, (_, k) => Math.round((duration * k) / n));
  return cuts.slice(0, n).map((start, k) => (k === n - 1 ? { start } : { start, end: cuts[k + 1]! }));
}

/** One part's features, with its first and last frames so the parts can be joined. */
interface PartFeatures {
  cols: Float32Array[];
  first: Uint8Array | undefined;
  last: Uint8Array | undefined;
  /** frames a bounded stretch should give */
  want: number | undefined;
}

async function analysePart(info: MediaInfo, kernels: NativeKernels, fps: number, part: VideoPart, index: number,
  opts: AnalyseOptions, onFrames: (n: number) => void): Promise<PartFeatures> {
  const frameBytes = ANALYSIS_W * ANALYSIS_H;
  const cols = Array.from({ length: FEATS }, () => new Column());
  // The previous frame rides along at the start of each batch so diffs continue across chunks.
  let prev: Uint8Array | undefined;
  let first: Uint8Array | undefined;
  let pending: Buffer = Buffer.alloc(0);
  const consume = (chunk: Buffer): void => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    const n = Math.floor(pending.length / frameBytes);
    if (n === 0) return;
    const whole = pending.subarray(0, n * frameBytes);
    first ??= new Uint8Array(whole.subarray(0, frameBytes));
    const batch = new Uint8Array((prev ? n + 1 : n) * frameBytes);
    if (prev) batch.set(prev, 0);
    batch.set(whole, prev ? frameBytes : 0);
    const f = kernels.frameFeatures(batch, ANALYSIS_W, ANALYSIS_H, prev ? n + 1 : n, EDGE_THRESHOLD);
    for (let i = prev ? 1 : 0; i < (prev ? n + 1 : n); i++) {
      for (let k = 0; k < FEATS; k++) cols[k]!.push(f[i * FEATS + k]!);
    }
    prev = batch.slice(batch.length - frameBytes);
    pending = Buffer.from(pending.subarray(n * frameBytes));
    onFrames(n);
  };
  const gray = `fps=${fps},scale=${ANALYSIS_W}:${ANALYSIS_H}:flags=area,format=gray`;
  const tap = opts.tap;
  const len = part.end === undefined ? undefined : part.end - part.start;
  // a bounded part stops at its own frame count; the decode reads a second past its end so the
  // fps filter has the frames its last slots pick from
  const count = (rate: number): string[] => (len === undefined ? [] : ['-frames:v', String(Math.round(len * rate))]);
  const onPipe3 = tap && rawFrames(tap.frameBytes, (i, frame) => tap.onFrame(part.start + i / tap.fps, frame, index));
  const output = tap
    ? ['-filter_complex', `[0:v:0]split=2[a][b];[a]${gray}[g];[b]fps=${tap.fps},${tap.filters}[t]`,
      '-map', '[g]', ...count(fps), '-f', 'rawvideo', 'pipe:1', '-map', '[t]', ...count(tap.fps), '-f', 'rawvideo', 'pipe:3']
    : ['-map', '0:v:0', '-an', '-sn', '-vf', gray, ...count(fps), '-f', 'rawvideo', 'pipe:1'];
  const seek = [...(part.start > 0 ? ['-ss', String(part.start)] : []), ...(len === undefined ? [] : ['-t', String(len + 1)])];
  await run('ffmpeg', [
    // frames nothing refers to and the deblocking filter only cost time here: a 5 fps, 160x90
    // sample needs neither (3-min 720p lecture: 7.5 s → 4.2 s of decoding)
    '-hide_banner', '-nostdin', '-v', 'error', ...FAST_DECODE, ...seek, '-i', info.path, ...output,
  ], { signal: opts.signal, onStdout: consume, onPipe3 });
  return { cols: cols.map((c) => c.done()), first, last: prev, want: len === undefined ? undefined : Math.round(len * fps) };
}

/**
 * A stretch that came out short while a later one has frames (the stream has a gap across its
 * end) holds its last frame to its length, as the fps filter of one decode does over a gap, so
 * the later stretches keep their times. Where the video itself ends early, nothing is added.
 */
function holdShortParts(got: PartFeatures[]): void {
  for (let i = 0; i < got.length - 1; i++) {
    const g = got[i]!;
    const have = g.cols[0]!.length;
    if (g.want === undefined || have >= g.want || have === 0 || !got.slice(i + 1).some((l) => l.cols[0]!.length > 0)) continue;
    g.cols = g.cols.map((c) => {
      const held = new Float32Array(g.want!);
      held.set(c);
      held.fill(c[have - 1]!, have);
      return held;
    });
  }
}

export async function analyseVideo(info: MediaInfo, kernels: NativeKernels, fps: number, opts: AnalyseOptions = {}): Promise<VideoFeatures> {
  const parts = videoParts(info.duration, fps, opts.tap?.fps,
    opts.parts ?? Math.min(availableParallelism(), Math.floor(info.duration / MIN_PART_S)));
  let frames = 0;
  const onFrames = (n: number): void => {
    frames += n;
    opts.onProgress?.(frames / fps);
  };
  // a stretch that fails stops the others, and its error is the one the job reports; every
  // decoder has exited before this returns
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(opts.signal?.reason);
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let first: { err: unknown } | undefined;
  let settled: Array<PromiseSettledResult<PartFeatures>>;
  try {
    settled = await Promise.allSettled(parts.map((p, i) => analysePart(info, kernels, fps, p, i, { ...opts, signal: stop.signal }, onFrames)
      .catch((err: unknown) => { first ??= { err }; stop.abort(err); throw err; })));
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  if (first) throw first.err;
  const got = settled.map((r) => (r as PromiseFulfilledResult<PartFeatures>).value);
  holdShortParts(got);
  // the first frame of each later part is compared with the last frame of the part before it,
  // as one decode would have
  for (let i = 1; i < got.length; i++) {
    const before = got[i - 1]!.last;
    const here = got[i]!;
    if (!before || !here.first || here.cols[0]!.length === 0) continue;
    const pair = new Uint8Array(2 * before.length);
    pair.set(before, 0);
    pair.set(here.first, before.length);
    const f = kernels.frameFeatures(pair, ANALYSIS_W, ANALYSIS_H, 2, EDGE_THRESHOLD);
    here.cols[0]![0] = f[FEATS + 0]!;
    here.cols[2]![0] = f[FEATS + 2]!;
  }
  const joined = Array.from({ length: FEATS }, (_, k) => {
    const out = new Float32Array(got.reduce((n, g) => n + g.cols[k]!.length, 0));
    let at = 0;
    for (const g of got) { out.set(g.cols[k]!, at); at += g.cols[k]!.length; }
    return out;
  });
  const [diff, si, ti, edges, luma, lumaStd] = joined as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
  return { fps, diff, si, ti, edges, luma, lumaStd };
}

/** temp PCM folders still on disk: removed at exit if a job died between analysis and its models */
const livePcm = new Set<string>();
let exitHook = false;

async function tempPcmDir(signal: AbortSignal | undefined): Promise<{ dir: string; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'yachay-pcm-'));
  livePcm.add(dir);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => { for (const d of livePcm) rmSync(d, { recursive: true, force: true }); });
  }
  let removing: Promise<void> | undefined;
  const dispose = (): Promise<void> => (removing ??= (async () => {
    signal?.removeEventListener('abort', onAbort);
    await rm(dir, { recursive: true, force: true });
    livePcm.delete(dir);
  })());
  const onAbort = (): void => void dispose();
  signal?.addEventListener('abort', onAbort, { once: true });
  return { dir, dispose };
}

/**
 * One audio decode, two outputs: float samples on a pipe, whose features are computed chunk
 * by chunk as they arrive, and the same samples as 16-bit PCM in a temp file for the speech
 * model (see PcmFile for why 16-bit). A 60-minute lesson used to sit in memory twice (230 MB
 * of float32, plus the copy that joined the pipe's chunks); now only one chunk does.
 */
export async function analyseAudio(info: MediaInfo, kernels: NativeKernels,
  opts: { signal?: AbortSignal | undefined } = {}): Promise<AudioFeatures> {
  const cols = Array.from({ length: AFEATS }, () => new Column());
  const frameBytes = AUDIO_FRAME * 4;
  let pending: Buffer = Buffer.alloc(0);
  const consume = (chunk: Buffer): void => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    const n = Math.floor(pending.length / frameBytes);
    if (n === 0) return;
    // copy: a pipe chunk's offset may not be 4-byte aligned for the addon
    const samples = new Float32Array(n * AUDIO_FRAME);
    new Uint8Array(samples.buffer).set(pending.subarray(0, n * frameBytes));
    const f = kernels.audioFeatures(samples, AUDIO_FRAME);
    for (let i = 0; i < n; i++) for (let k = 0; k < AFEATS; k++) cols[k]!.push(f[i * AFEATS + k]!);
    pending = Buffer.from(pending.subarray(n * frameBytes));
  };
  const tmp = await tempPcmDir(opts.signal);
  const path = join(tmp.dir, `speech-${AUDIO_RATE}.pcm`);
  try {
    const resample = ['-ac', '1', '-ar', String(AUDIO_RATE)];
    await run('ffmpeg', [
      '-hide_banner', '-nostdin', '-v', 'error', '-i', info.path,
      '-map', '0:a:0', '-vn', '-sn', ...resample, '-f', 'f32le', 'pipe:1',
      '-map', '0:a:0', '-vn', '-sn', ...resample, ...PCM_FILE_OUTPUT, path,
    ], { signal: opts.signal, onStdout: consume });
    // a trailing part-frame is dropped, as the kernel drops it from a whole recording
    const [rms, zcr, low, , high] = cols.map((c) => c.done()) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
    return {
      frameSec: AUDIO_FRAME / AUDIO_RATE, rms, zcr, low, high,
      pcmFile: { path, rate: AUDIO_RATE, samples: await pcmFileSamples(path), dispose: tmp.dispose },
    };
  } catch (err) {
    await tmp.dispose();
    throw err;
  }
}

export async function analyse(info: MediaInfo, kernels: NativeKernels, fps: number, opts: AnalyseOptions = {}): Promise<Analysis> {
  // both decodes at once: one core each on a Pi, and the audio pass is short
  const [video, audio] = await Promise.all([
    info.video ? analyseVideo(info, kernels, fps, opts) : Promise.resolve(undefined),
    info.audio ? analyseAudio(info, kernels, opts) : Promise.resolve(undefined),
  ]);
  return { video, audio };
}
