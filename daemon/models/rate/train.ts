import { YachayError } from '../../errors.js';
import type { ShotClass } from '../../optimize/shots.js';
import { FEATURE_COUNT, FEATURE_NAMES, FEATURES_VERSION, classOf } from './features.js';
import type { EncodeRow } from './sweep.js';
import { seeded } from './sweep.js';

/**
 * The rate model: a small MLP (15 → 32 → 16 → 1) from a shot's features and a QP to the
 * quality the lowest rendition's check would measure (OCR ratio on text, SSIM on pictures).
 *
 * One network for all classes, with the class as a one-hot input, rather than one head per
 * class: a few hundred rows split four ways leave each head too little to learn from, while
 * what they share (quality falls with QP, faster on busy pictures) is most of the curve. The
 * one-hot columns let the first layer shift and tilt the curve per class. The output is a
 * sigmoid: both metrics live in [0, 1], and OCR ratios sit at exactly 1 far from the floor.
 *
 * Normalisation is part of the exported graph (Sub, Div before the first MatMul), so the box
 * feeds raw features and the file cannot drift from the statistics it was trained with.
 */
type Tf = typeof import('@tensorflow/tfjs');

let tfPromise: Promise<Tf> | undefined;

/** tfjs-node when a machine has it (native, faster); the pure-JS build otherwise (always installed). */
export function loadTf(): Promise<Tf> {
  tfPromise ??= (async () => {
    const nodeName = '@tensorflow/tfjs-node';
    let tf: Tf;
    try {
      tf = (await import(nodeName)) as Tf;
    } catch {
      tf = await import('@tensorflow/tfjs');
      await tf.setBackend('cpu');
      // production mode: no per-op debug checks, and no banner asking for tfjs-node on stderr
      // (it cannot be installed on these boxes)
      tf.enableProdMode();
    }
    await tf.ready();
    return tf;
  })();
  return tfPromise;
}

export type Activation = 'relu' | 'sigmoid' | 'linear';

export interface DenseLayer {
  inDim: number;
  outDim: number;
  /** row-major [inDim][outDim], as tfjs and ONNX MatMul both lay it out */
  kernel: Float32Array;
  bias: Float32Array;
  activation: Activation;
}

export interface RateNet {
  version: typeof FEATURES_VERSION;
  featureNames: readonly string[];
  mean: Float32Array;
  std: Float32Array;
  layers: DenseLayer[];
  /**
   * classes whose training rows came at two or more frame rates: the only ones whose fps column
   * the model has learnt, so the only ones pickRate may move (rates.ts). Absent: none.
   */
  fpsClasses?: ShotClass[] | undefined;
}

export interface TrainOptions {
  seed?: number;
  epochs?: number;
  hidden?: [number, number];
  learningRate?: number;
  batchSize?: number;
  signal?: AbortSignal | undefined;
  onEpoch?: ((epoch: number, loss: number) => void) | undefined;
}

export interface TrainedRate {
  net: RateNet;
  epochs: number;
  finalLoss: number;
  /** tfjs's own prediction on raw features (normalised the same way): the parity reference */
  predictTf(x: readonly (readonly number[])[]): Promise<Float32Array>;
  dispose(): void;
}

export const DEFAULT_EPOCHS = 300;

/**
 * FNV-1a then a murmur3 finaliser: a lecture's place in the split depends on its name only, not
 * on what else is in the data. Without the finaliser, names that differ in their last
 * character ("es-11", "es-13") differ only in a few high bits and land on the same side.
 */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

export interface Split { train: EncodeRow[]; heldOut: EncodeRow[]; heldOutLessons: string[] }

/**
 * Where a lecture comes from: the part of its name before "<lang>-<seed>" ("eval-es-11" →
 * "eval"; "es-11", and names without a language and seed, → ""). Lectures of one source share
 * a generator, so each source with two or more lectures keeps at least one held out.
 */
export function lectureSource(lesson: string): string {
  return /^(.*?)-?(?:es|en)-\d+$/.exec(lesson)?.[1] ?? '';
}

/**
 * Held out by LECTURE: rows of one shot at neighbouring QPs are near-copies of each other, so a
 * row split would grade the model on rows it has all but seen. A lecture is held out when its
 * name hashes into the lowest `share` of the range, so adding lectures never moves old ones
 * from one side to the other; a source of two or more lectures with none there gives up its
 * lowest-hashing one (so content unlike the rest is also graded), and with few lectures at
 * least one is held out and one kept.
 */
export function splitByLecture(rows: readonly EncodeRow[], share = 0.25): Split {
  const lessons = [...new Set(rows.map((r) => r.lesson))].sort();
  if (lessons.length < 2) throw new YachayError('YCH_ERR_USAGE', `rate model: ${lessons.length} lecture(s) in the data; a held-out split needs at least 2`);
  const held = new Set(lessons.filter((l) => hash(l) / 2 ** 32 < share));
  const sources = new Map<string, string[]>();
  for (const l of lessons) sources.set(lectureSource(l), [...(sources.get(lectureSource(l)) ?? []), l]);
  for (const group of sources.values()) {
    if (group.length >= 2 && !group.some((l) => held.has(l))) held.add([...group].sort((a, b) => hash(a) - hash(b))[0]!);
  }
  const byHash = [...lessons].sort((a, b) => hash(a) - hash(b));
  if (held.size === 0) held.add(byHash[0]!);
  if (held.size === lessons.length) held.delete([...held].sort()[held.size - 1]!);
  const heldOutLessons = lessons.filter((l) => held.has(l));
  return { train: rows.filter((r) => !held.has(r.lesson)), heldOut: rows.filter((r) => held.has(r.lesson)), heldOutLessons };
}

function rowOrder(a: EncodeRow, b: EncodeRow): number {
  if (a.lesson !== b.lesson) return a.lesson < b.lesson ? -1 : 1;
  if (a.shot !== b.shot) return a.shot - b.shot;
  for (let j = 0; j < FEATURE_COUNT; j++) if (a.features[j] !== b.features[j]) return a.features[j]! - b.features[j]!;
  return a.quality.value - b.quality.value;
}

function stats(x: readonly (readonly number[])[]): { mean: Float32Array; std: Float32Array } {
  const mean = new Float32Array(FEATURE_COUNT); const std = new Float32Array(FEATURE_COUNT);
  for (let j = 0; j < FEATURE_COUNT; j++) {
    let s = 0; let s2 = 0;
    for (const r of x) { s += r[j]!; s2 += r[j]! * r[j]!; }
    const m = s / x.length;
    const sd = Math.sqrt(Math.max(0, s2 / x.length - m * m));
    mean[j] = m;
    // a column that never varies (one rendition size in the data) passes through unscaled
    std[j] = sd > 1e-6 ? sd : 1;
  }
  return { mean, std };
}

export async function trainRate(rows: readonly EncodeRow[], opts: TrainOptions = {}): Promise<TrainedRate> {
  if (rows.length < 8) throw new YachayError('YCH_ERR_USAGE', `rate model: ${rows.length} rows is too few to train on`);
  const tf = await loadTf();
  const seed = opts.seed ?? 1;
  const epochs = opts.epochs ?? DEFAULT_EPOCHS;
  const [h1, h2] = opts.hidden ?? [32, 16];
  const batch = opts.batchSize ?? 32;
  // a fixed order first: the same rows give the same weights however the file or table lists them
  rows = [...rows].sort(rowOrder);
  const x = rows.map((r) => r.features);
  const { mean, std } = stats(x);
  const init = (k: number): ReturnType<Tf['initializers']['glorotUniform']> => tf.initializers.glorotUniform({ seed: seed * 101 + k });
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: h1, inputShape: [FEATURE_COUNT], activation: 'relu', kernelInitializer: init(1) }));
  model.add(tf.layers.dense({ units: h2, activation: 'relu', kernelInitializer: init(2) }));
  model.add(tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: init(3) }));
  const meanT = tf.tensor1d(mean); const stdT = tf.tensor1d(std);
  const normalise = (t: ReturnType<Tf['tensor2d']>): ReturnType<Tf['tensor2d']> => tf.div(tf.sub(t, meanT), stdT);
  const xs = tf.tidy(() => normalise(tf.tensor2d(x.map((r) => [...r]), [x.length, FEATURE_COUNT], 'float32')));
  const ys = tf.tensor2d(rows.map((r) => [r.quality.value]), [rows.length, 1], 'float32');
  // person labels weigh more (labels.ts); without any, the plain mean keeps old results identical
  const ws = rows.some((r) => (r.weight ?? 1) !== 1) ? tf.tensor2d(rows.map((r) => [r.weight ?? 1]), [rows.length, 1], 'float32') : undefined;
  const optimizer = tf.train.adam(opts.learningRate ?? 0.005);
  const rnd = seeded(seed);
  const order = Array.from({ length: rows.length }, (_, i) => i);
  let finalLoss = Number.NaN;
  try {
    for (let e = 0; e < epochs; e++) {
      if (opts.signal?.aborted) throw new YachayError('YCH_ERR_ABORTED', 'training stopped: aborted');
      // our own seeded shuffle: tfjs's fit() shuffles with Math.random
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      let sum = 0;
      for (let b = 0; b < order.length; b += batch) {
        const idx = tf.tensor1d(order.slice(b, b + batch), 'int32');
        const loss = optimizer.minimize(() => {
          const xb = tf.gather(xs, idx); const yb = tf.gather(ys, idx);
          const pred = model.apply(xb) as ReturnType<Tf['tensor2d']>;
          return (ws ? tf.losses.meanSquaredError(yb, pred, tf.gather(ws, idx)) : tf.losses.meanSquaredError(yb, pred)) as ReturnType<Tf['scalar']>;
        }, true);
        sum += (loss!.dataSync()[0] ?? 0) * Math.min(batch, order.length - b);
        loss!.dispose(); idx.dispose();
      }
      finalLoss = sum / order.length;
      opts.onEpoch?.(e, finalLoss);
      // the CPU backend never yields on its own: let an abort or a progress line through
      if (e % 10 === 9) await new Promise((r) => setImmediate(r));
    }
  } catch (err) {
    model.dispose(); meanT.dispose(); stdT.dispose(); xs.dispose(); ys.dispose(); ws?.dispose(); optimizer.dispose();
    throw err;
  }
  xs.dispose(); ys.dispose(); ws?.dispose(); optimizer.dispose();
  const layers: DenseLayer[] = model.layers.map((l, i) => {
    const [k, b] = l.getWeights();
    return {
      inDim: k!.shape[0]!, outDim: k!.shape[1]!, kernel: k!.dataSync() as Float32Array, bias: b!.dataSync() as Float32Array,
      activation: i === model.layers.length - 1 ? 'sigmoid' : 'relu',
    };
  });
  const net: RateNet = { version: FEATURES_VERSION, featureNames: FEATURE_NAMES, mean, std, layers, fpsClasses: fpsClassesOf(rows) };
  return {
    net, epochs, finalLoss,
    async predictTf(q) {
      const out = tf.tidy(() => model.predict(normalise(tf.tensor2d(q.map((r) => [...r]), [q.length, FEATURE_COUNT], 'float32'))) as ReturnType<Tf['tensor2d']>);
      const data = (await out.data()) as Float32Array;
      out.dispose();
      return data;
    },
    dispose() { model.dispose(); meanT.dispose(); stdT.dispose(); },
  };
}

/** Classes with rows at two or more frame rates (what the fps sweep adds). */
export function fpsClassesOf(rows: readonly EncodeRow[]): ShotClass[] {
  const seen = new Map<ShotClass, Set<number>>();
  for (const r of rows) {
    const c = classOf(r.features);
    seen.set(c, (seen.get(c) ?? new Set<number>()).add(r.settings.fps));
  }
  return [...seen].filter(([, f]) => f.size >= 2).map(([c]) => c).sort();
}

/** Plain forward pass (float64) for metrics and tests: the same arithmetic the ONNX graph does. */
export function predictNet(net: RateNet, x: readonly (readonly number[])[]): Float32Array {
  const out = new Float32Array(x.length);
  x.forEach((row, n) => {
    let a = row.map((v, j) => (v - net.mean[j]!) / net.std[j]!);
    for (const l of net.layers) {
      const z = new Array<number>(l.outDim).fill(0);
      for (let o = 0; o < l.outDim; o++) {
        let s = l.bias[o]!;
        for (let i = 0; i < l.inDim; i++) s += a[i]! * l.kernel[i * l.outDim + o]!;
        z[o] = l.activation === 'relu' ? Math.max(0, s) : l.activation === 'sigmoid' ? 1 / (1 + Math.exp(-s)) : s;
      }
      a = z;
    }
    out[n] = a[0]!;
  });
  return out;
}

export interface RateMetrics {
  n: number;
  /** mean absolute error of the predicted metric value */
  mae: number;
  /**
   * share of rows where the model's verdict at the floor (predicted ≥ floor) is the measured
   * one: what decides whether a picked QP passes verify
   */
  floorSafeAccuracy: number;
  /** share of rows the model would pass that the measurement fails: the costly mistake */
  unsafeRate: number;
  perClass: Partial<Record<ShotClass, { n: number; mae: number }>>;
}

export function evaluate(pred: ArrayLike<number>, rows: readonly EncodeRow[]): RateMetrics {
  if (pred.length !== rows.length) throw new RangeError(`evaluate: ${pred.length} predictions for ${rows.length} rows`);
  let abs = 0; let agree = 0; let unsafe = 0;
  const per: Partial<Record<ShotClass, { n: number; sum: number }>> = {};
  rows.forEach((r, i) => {
    const p = pred[i]!; const v = r.quality.value; const f = r.quality.floor;
    abs += Math.abs(p - v);
    if ((p >= f) === (v >= f)) agree++;
    if (p >= f && v < f) unsafe++;
    const c = (per[classOf(r.features)] ??= { n: 0, sum: 0 });
    c.n++; c.sum += Math.abs(p - v);
  });
  const n = rows.length;
  const perClass: RateMetrics['perClass'] = {};
  for (const [k, c] of Object.entries(per) as Array<[ShotClass, { n: number; sum: number }]>) perClass[k] = { n: c.n, mae: c.sum / c.n };
  return { n, mae: n ? abs / n : Number.NaN, floorSafeAccuracy: n ? agree / n : Number.NaN, unsafeRate: n ? unsafe / n : Number.NaN, perClass };
}
