import { existsSync, readFileSync } from 'node:fs';
import type { ShotClass } from '../../optimize/shots.js';
import { fpsClassesOfFile } from './metadata.js';
import { join } from 'node:path';
import { YachayError } from '../../errors.js';
import { findModel, loadManifest, modelPath, openModel } from '../manifest.js';
import { REPO_ROOT } from '../../paths.js';
import type { Manifest } from '../manifest.js';
import { float32, loadModel } from '../runtime.js';
import type { InferenceSession } from '../runtime.js';
import { activeFile } from './files.js';
import { FEATURE_COUNT, QP_INDEX, classOf, withQp } from './features.js';
import { CLASS_SETTINGS } from '../../optimize/plan.js';

/**
 * The rate model at work: for one shot, the coarsest quantiser the model expects to still
 * meet the class's floor. Verify measures the result afterwards, so a wrong guess costs a
 * re-encode, never a lesson below its floor.
 */
export const RATE_INPUT = 'features';
export const RATE_OUTPUT = 'quality';
export const SHIPPED_MODEL = join(REPO_ROOT, 'models', 'rate', 'rate-v1.onnx');
/** pickQp's search range around the class default: what the model was trained to judge */
export const QP_BELOW = 6;
export const QP_ABOVE = 9;

export type RateSession = Pick<InferenceSession, 'run'>;

/** One batch through the model: rows of FEATURE_COUNT raw features → predicted quality per row. */
export async function predictRows(session: RateSession, rows: readonly (readonly number[])[]): Promise<Float32Array> {
  if (rows.length === 0) return new Float32Array(0);
  const flat = new Float32Array(rows.length * FEATURE_COUNT);
  rows.forEach((r, i) => {
    if (r.length !== FEATURE_COUNT) throw new RangeError(`rate model: row ${i} has ${r.length} features, expected ${FEATURE_COUNT}`);
    flat.set(r, i * FEATURE_COUNT);
  });
  const out = await session.run({ [RATE_INPUT]: float32([rows.length, FEATURE_COUNT], flat) });
  const q = out[RATE_OUTPUT];
  if (!q || !(q.data instanceof Float32Array) || q.data.length !== rows.length) {
    throw new YachayError('YCH_ERR_MODEL_RUN', `rate model gave no "${RATE_OUTPUT}" of ${rows.length} values`);
  }
  return q.data;
}

export interface PickOptions {
  /** predicted quality must clear the floor by this much (the model's error, in metric units) */
  margin: number;
  /** further limits inside the class's own −6 … +9 range */
  min?: number;
  max?: number;
  /** returned when even the finest QP in range is not expected to pass */
  fallback: number;
}

/**
 * Walks up from the finest QP in range and stops at the first one the model expects to miss:
 * the answer is the QP before it. Taking the highest passing QP anywhere instead would trust a
 * wiggle of the curve above a predicted failure, and quality does not come back with coarser
 * quantisers.
 */
export async function pickQp(session: RateSession, shotFeatures: readonly number[], floor: number, opts: PickOptions): Promise<number> {
  if (shotFeatures.length !== QP_INDEX) throw new RangeError(`pickQp: ${shotFeatures.length} shot features, expected ${QP_INDEX} (no QP column)`);
  const def = CLASS_SETTINGS[classOf(shotFeatures)][0].qp;
  const lo = Math.max(def - QP_BELOW, opts.min ?? -Infinity);
  const hi = Math.min(def + QP_ABOVE, opts.max ?? Infinity);
  if (lo > hi) return opts.fallback;
  const qps: number[] = [];
  for (let q = Math.ceil(lo); q <= hi; q++) qps.push(q);
  const pred = await predictRows(session, qps.map((q) => withQp(shotFeatures, q)));
  let best: number | undefined;
  for (let i = 0; i < qps.length; i++) {
    if (!(pred[i]! >= floor + opts.margin)) break;
    best = qps[i];
  }
  return best ?? opts.fallback;
}

export interface LoadedRate {
  session: InferenceSession;
  /** which file serves: the box's registry version, or the model shipped with the program */
  source: 'registry' | 'shipped';
  file: string;
  /** classes whose frame rate this file's model learnt (onnx-export.ts fpsClassesOfFile) */
  fpsClasses: ShotClass[];
}

/** The data folder's active file (written by the registry), else the shipped file, checked against the manifest. */
export async function loadRateModel(dataDir: string | undefined, manifest?: Manifest): Promise<LoadedRate> {
  if (dataDir) {
    const f = activeFile(dataDir);
    if (existsSync(f)) return { session: await loadModel('onnx', f), source: 'registry', file: f, fpsClasses: fpsClassesOfFile(readFileSync(f)) };
  }
  const m = manifest ?? loadManifest();
  const file = modelPath(findModel(m, 'rate'));
  return { session: await openModel(m, 'rate'), source: 'shipped', file, fpsClasses: existsSync(file) ? fpsClassesOfFile(readFileSync(file)) : [] };
}
