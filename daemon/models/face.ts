import { performance } from 'node:perf_hooks';
import type { FrameTap } from '../optimize/analyse.js';
import type { MediaInfo } from '../optimize/probe.js';
import { YachayError } from '../errors.js';
import type { InferenceSession, Tensor } from './runtime.js';

/**
 * Face detection with MediaPipe BlazeFace (short range) and what the encoder needs from it:
 * one region of interest per shot, the teacher's face and the space below it where hands
 * and board work happen. The model gives 896 anchor-relative boxes and logits; decoding,
 * NMS and the per-shot region are pure functions here so they test without the model.
 */
export const FACE_SIZE = 128;
const KEYPOINTS = 6; // eyes, nose tip, mouth centre, ear tragions
const REG_STRIDE = 4 + 2 * KEYPOINTS;
const LOGIT_CLAMP = 100; // as MediaPipe: keeps exp() finite on extreme logits

export interface Anchor { cx: number; cy: number }

/** Normalised to the frame the caller means (128×128 model input, or the source video). */
export interface Box { xmin: number; ymin: number; xmax: number; ymax: number }

export interface FaceDetection extends Box {
  score: number;
  /** [x, y] pairs in the same coordinates as the box */
  keypoints: Array<[number, number]>;
}

export interface DecodeOptions {
  /** sigmoid score below which an anchor is dropped; 0.5 as MediaPipe's short-range graph */
  minScore?: number;
  /** overlap above which two boxes are the same face */
  iou?: number;
  /** 'weighted' averages overlapping boxes by score (steadier across frames); 'plain' keeps the best */
  nms?: 'weighted' | 'plain';
}

/**
 * The SSD anchors of the short-range model: a 16×16 grid (stride 8) with 2 anchors per cell,
 * then an 8×8 grid (strides 16, three layers merged) with 6 per cell; row-major, anchors of
 * one cell adjacent. Fixed anchor size, so only centres matter: (x + 0.5) / grid.
 */
export function faceAnchors(): Anchor[] {
  const out: Anchor[] = [];
  for (const [grid, perCell] of [[16, 2], [8, 6]] as const) {
    for (let y = 0; y < grid; y++) {
      for (let x = 0; x < grid; x++) {
        for (let k = 0; k < perCell; k++) out.push({ cx: (x + 0.5) / grid, cy: (y + 0.5) / grid });
      }
    }
  }
  return out;
}

const ANCHORS = faceAnchors();

export function sigmoid(logit: number): number {
  const x = Math.max(-LOGIT_CLAMP, Math.min(LOGIT_CLAMP, logit));
  return 1 / (1 + Math.exp(-x));
}

/**
 * Raw detections (before NMS) from the two outputs: regressors [896×16] in input pixels
 * relative to the anchor centre (dx, dy, w, h, then 6 keypoints), logits [896].
 */
export function decodeFaces(regressors: Float32Array, logits: Float32Array, minScore = 0.5): FaceDetection[] {
  if (logits.length !== ANCHORS.length || regressors.length !== ANCHORS.length * REG_STRIDE) {
    throw new RangeError(`BlazeFace outputs: expected ${ANCHORS.length} anchors, got ${logits.length} logits and ${regressors.length / REG_STRIDE} boxes`);
  }
  const out: FaceDetection[] = [];
  for (let i = 0; i < ANCHORS.length; i++) {
    const score = sigmoid(logits[i]!);
    if (score < minScore) continue;
    const a = ANCHORS[i]!;
    const r = i * REG_STRIDE;
    const cx = regressors[r]! / FACE_SIZE + a.cx;
    const cy = regressors[r + 1]! / FACE_SIZE + a.cy;
    const w = regressors[r + 2]! / FACE_SIZE;
    const h = regressors[r + 3]! / FACE_SIZE;
    const keypoints: Array<[number, number]> = [];
    for (let k = 0; k < KEYPOINTS; k++) {
      keypoints.push([regressors[r + 4 + 2 * k]! / FACE_SIZE + a.cx, regressors[r + 5 + 2 * k]! / FACE_SIZE + a.cy]);
    }
    out.push({ score, xmin: cx - w / 2, ymin: cy - h / 2, xmax: cx + w / 2, ymax: cy + h / 2, keypoints });
  }
  return out;
}

export function iou(a: Box, b: Box): number {
  const iw = Math.min(a.xmax, b.xmax) - Math.max(a.xmin, b.xmin);
  const ih = Math.min(a.ymax, b.ymax) - Math.max(a.ymin, b.ymin);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a.xmax - a.xmin) * (a.ymax - a.ymin) + (b.xmax - b.xmin) * (b.ymax - b.ymin) - inter;
  return union > 0 ? inter / union : 0;
}

/** Best first; each kept face absorbs the candidates that overlap it by more than `threshold`. */
export function nonMaxSuppression(dets: readonly FaceDetection[], threshold = 0.3, mode: 'weighted' | 'plain' = 'weighted'): FaceDetection[] {
  let rest = [...dets].sort((a, b) => b.score - a.score);
  const kept: FaceDetection[] = [];
  while (rest.length) {
    const top = rest[0]!;
    const group = rest.filter((d) => iou(top, d) > threshold);
    // top always overlaps itself, unless its box is empty: then it stands alone
    if (!group.includes(top)) group.unshift(top);
    rest = rest.filter((d) => !group.includes(d));
    if (mode === 'plain' || group.length === 1) { kept.push(top); continue; }
    const total = group.reduce((s, d) => s + d.score, 0);
    const avg = (f: (d: FaceDetection) => number): number => group.reduce((s, d) => s + f(d) * d.score, 0) / total;
    kept.push({
      score: top.score,
      xmin: avg((d) => d.xmin), ymin: avg((d) => d.ymin), xmax: avg((d) => d.xmax), ymax: avg((d) => d.ymax),
      keypoints: top.keypoints.map((_, k) => [avg((d) => d.keypoints[k]![0]), avg((d) => d.keypoints[k]![1])]),
    });
  }
  return kept;
}

/** rgb24 bytes → float32 NHWC in [-1, 1], the range the model was trained on. */
export function toInputTensor(rgb: Uint8Array, out = new Float32Array(FACE_SIZE * FACE_SIZE * 3)): Tensor {
  for (let i = 0; i < out.length; i++) out[i] = rgb[i]! / 127.5 - 1;
  return { dtype: 'float32', shape: [1, FACE_SIZE, FACE_SIZE, 3], data: out };
}

/**
 * Faces in one 128×128 rgb24 frame (the caller scales and letterboxes), best first, boxes
 * normalised to that frame. Outputs are found by shape, not name, so a re-exported model
 * with other tensor names still works.
 */
export async function detectFaces(session: InferenceSession, rgb: Uint8Array, w: number, h: number, opts: DecodeOptions = {}): Promise<FaceDetection[]> {
  if (w !== FACE_SIZE || h !== FACE_SIZE || rgb.length !== FACE_SIZE * FACE_SIZE * 3) {
    throw new RangeError(`detectFaces takes a ${FACE_SIZE}x${FACE_SIZE} rgb24 frame, got ${w}x${h} (${rgb.length} bytes)`);
  }
  const input = session.inputs[0];
  const regInfo = session.outputs.find((o) => o.shape.at(-1) === REG_STRIDE);
  const logInfo = session.outputs.find((o) => o.shape.at(-1) === 1);
  if (!input || !regInfo || !logInfo) {
    throw new YachayError('YCH_ERR_MODEL_RUN', `not a BlazeFace model: outputs ${session.outputs.map((o) => `${o.name} [${o.shape.join(',')}]`).join(', ')}`);
  }
  const res = await session.run({ [input.name]: toInputTensor(rgb) });
  const raw = decodeFaces(res[regInfo.name]!.data as Float32Array, res[logInfo.name]!.data as Float32Array, opts.minScore ?? 0.5);
  return nonMaxSuppression(raw, opts.iou ?? 0.3, opts.nms ?? 'weighted');
}

/** Where a source frame lands inside the 128×128 model input (aspect ratio kept, black bars). */
export interface Letterbox { width: number; height: number; padX: number; padY: number }

export function letterbox(srcW: number, srcH: number, size = FACE_SIZE): Letterbox {
  const scale = Math.min(size / srcW, size / srcH);
  const width = Math.max(1, Math.min(size, Math.round(srcW * scale)));
  const height = Math.max(1, Math.min(size, Math.round(srcH * scale)));
  return { width, height, padX: Math.floor((size - width) / 2), padY: Math.floor((size - height) / 2) };
}

const clamp01 = (v: number): number => Math.max(0, Math.min(1, v));

/** A detection in model-input coordinates → normalised source coordinates (clamped). */
export function unletterbox(d: FaceDetection, lb: Letterbox, size = FACE_SIZE): FaceDetection {
  const x = (v: number): number => clamp01((v * size - lb.padX) / lb.width);
  const y = (v: number): number => clamp01((v * size - lb.padY) / lb.height);
  return {
    score: d.score, xmin: x(d.xmin), ymin: y(d.ymin), xmax: x(d.xmax), ymax: y(d.ymax),
    keypoints: d.keypoints.map(([kx, ky]) => [x(kx), y(ky)]),
  };
}

export interface FaceFrame {
  /** seconds from the start of the video */
  t: number;
  /** best first, normalised to the displayed source frame */
  faces: FaceDetection[];
}

/** ffmpeg filters (after `fps`) that make the 128×128 rgb24 model input of a frame. */
function letterboxFilters(lb: Letterbox): string {
  return [`scale=${lb.width}:${lb.height}:flags=area`, 'setsar=1',
    `pad=${FACE_SIZE}:${FACE_SIZE}:${lb.padX}:${lb.padY}:black`, 'format=rgb24'].join(',');
}

const FRAME_BYTES = FACE_SIZE * FACE_SIZE * 3;

/**
 * A frame whose 128×128 picture differs from the last one the model saw by less than this mean
 * absolute difference (0–255 per channel) keeps that frame's answer: a slide held for a minute,
 * a still board or a black gap does not need the model 120 times. A camera's sensor noise alone
 * lies above it, so filmed people are always looked at.
 */
export const STILL_FRAME_DIFF = 1.5;
/** ... but the model looks again at least this often, so a slow change is never missed */
export const STILL_RECHECK_S = 10;

/** mean absolute difference of two frames of the same size, 0–255 */
export function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/**
 * Detects each frame as it arrives, one at a time (the model is far faster than decoding, so
 * frames never pile up), and keeps the faces in source coordinates. A frame that hardly differs
 * from the last one the model saw reuses its answer (bench:long: the model was the largest part
 * of analysis + models on the hour, mostly on slides).
 */
class FaceCollector {
  private readonly frames: FaceFrame[] = [];
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown;
  /** per part of the analysis decode: the parts' frames interleave, each part runs in time order */
  private readonly seen = new Map<number, { frame: Uint8Array; t: number; faces: FaceDetection[] }>();
  /** ms spent in the model */
  ms = 0;
  /** frames the model ran on, and frames that reused a still frame's answer */
  inferred = 0;
  reused = 0;

  constructor(private readonly session: InferenceSession, private readonly lb: Letterbox, private readonly opts: DecodeOptions) {}

  push(t: number, frame: Uint8Array, part: number): void {
    // the feeding decode may reuse its buffer: keep our own copy of what the model will see
    const own = frame.slice();
    this.chain = this.chain.then(async () => {
      if (this.failure) return;
      try {
        const last = this.seen.get(part);
        if (last && t - last.t < STILL_RECHECK_S && meanAbsDiff(own, last.frame) < STILL_FRAME_DIFF) {
          this.reused++;
          this.frames.push({ t, faces: last.faces });
          return;
        }
        const t0 = performance.now();
        const faces = (await detectFaces(this.session, own, FACE_SIZE, FACE_SIZE, this.opts)).map((f) => unletterbox(f, this.lb));
        this.ms += performance.now() - t0;
        this.inferred++;
        this.seen.set(part, { frame: own, t, faces });
        this.frames.push({ t, faces });
      } catch (err) {
        this.failure = err;
      }
    });
  }

  async done(): Promise<FaceFrame[]> {
    await this.chain;
    if (this.failure) throw this.failure;
    return this.frames.sort((a, b) => a.t - b.t);
  }
}

/** display size, so phone rotation and the letterbox mapping agree with what people see */
function letterboxOf(info: MediaInfo): Letterbox {
  if (!info.video) throw new YachayError('YCH_ERR_INPUT_NOT_MEDIA', `${info.path} has no video stream to look for faces in`);
  return letterbox(info.video.displayWidth, info.video.displayHeight);
}

/**
 * Faces over a video at `fps` frames per second, fed by a decode that is already running: the
 * optimizer's analysis decode (analyse.ts FrameTap), so talking-head shots are never decoded a
 * second time. `done()` gives every frame's faces once the feeding decode has finished;
 * `modelMs` is the time spent in the model. Frames are 128×128 rgb24 made by `tap.filters`
 * (the source scaled to fit, black bars); faces come back in source coordinates.
 */
export function faceTap(session: InferenceSession, info: MediaInfo, opts: DecodeOptions & { fps?: number } = {}): {
  tap: FrameTap; done: () => Promise<FaceFrame[]>; modelMs: () => number; counts: () => { inferred: number; reused: number };
} {
  const lb = letterboxOf(info);
  const collector = new FaceCollector(session, lb, opts);
  return {
    tap: { fps: opts.fps ?? 2, filters: letterboxFilters(lb), frameBytes: FRAME_BYTES, onFrame: (t, frame, part) => collector.push(t, frame, part) },
    done: () => collector.done(),
    modelMs: () => collector.ms,
    counts: () => ({ inferred: collector.inferred, reused: collector.reused }),
  };
}

export interface Region { x: number; y: number; w: number; h: number }

export interface RegionOptions {
  /** face heights added below the face (hands, desk, board work) */
  below?: number;
  /** face widths added on each side */
  sides?: number;
  /** face heights added above (hair, a raised hand near the head) */
  above?: number;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * One region of interest for a shot: the median face box (a stray false positive or a
 * turned head moves a median far less than a union), grown downward and sideways to take
 * in what the teacher shows, clamped to the frame. Undefined when fewer than half the
 * frames have a face: then the shot is not a talking head and gets no region.
 */
export function shotRegion(track: readonly FaceFrame[], opts: RegionOptions = {}): Region | undefined {
  const faces = track.map((f) => f.faces[0]).filter((f): f is FaceDetection => f !== undefined);
  if (track.length === 0 || faces.length * 2 < track.length) return undefined;
  const xmin = median(faces.map((f) => f.xmin));
  const ymin = median(faces.map((f) => f.ymin));
  const xmax = median(faces.map((f) => f.xmax));
  const ymax = median(faces.map((f) => f.ymax));
  const fw = xmax - xmin;
  const fh = ymax - ymin;
  const x0 = clamp01(xmin - (opts.sides ?? 0.5) * fw);
  const x1 = clamp01(xmax + (opts.sides ?? 0.5) * fw);
  const y0 = clamp01(ymin - (opts.above ?? 0.2) * fh);
  const y1 = clamp01(ymax + (opts.below ?? 1.5) * fh);
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}
