import type { Shot, ShotClass } from '../../optimize/shots.js';

/**
 * Feature vector v1 of the rate model: what the optimizer knows about a shot before encoding
 * it, plus the settings it is about to use. The order is part of the model file's contract
 * (the exported graph reads column i as FEATURE_NAMES[i]); a new feature means version 2 and
 * a new model, never a reordered v1.
 */
export const FEATURES_VERSION = 1;

export const SHOT_CLASSES: readonly ShotClass[] = ['slide', 'board', 'talking_head', 'motion'];

export const FEATURE_NAMES = [
  'diff', 'diffP90', 'ti', 'si', 'edges', 'edgeGrowth',
  'cls_slide', 'cls_board', 'cls_talking_head', 'cls_motion',
  'log_duration', 'width', 'height', 'fps', 'qp',
] as const;

export const FEATURE_COUNT = FEATURE_NAMES.length;
/** The QP is the last column: the predictor sweeps it while the rest of the row stays fixed. */
export const QP_INDEX = FEATURE_COUNT - 1;

/** The part of a shot the features read: its class, its length and the analysis statistics. */
export type ShotInput = Pick<Shot, 'cls' | 'start' | 'end' | 'video'>;

export interface RenditionInput { width: number; height: number; fps: number }

/**
 * Every column but the QP. Duration goes in as a log: a 2 s shot and a 20 s shot differ in
 * GOP overhead by a ratio, not by a difference.
 */
export function shotFeatures(shot: ShotInput, r: RenditionInput): number[] {
  const v = shot.video;
  const dur = Math.max(0.1, shot.end - shot.start);
  return [
    v.diff, v.diffP90, v.ti, v.si, v.edges, v.edgeGrowth,
    ...SHOT_CLASSES.map((c) => (c === shot.cls ? 1 : 0)),
    Math.log(dur), r.width, r.height, r.fps,
  ];
}

export function withQp(base: readonly number[], qp: number): number[] {
  if (base.length !== QP_INDEX) throw new RangeError(`rate features v${FEATURES_VERSION}: ${base.length} shot columns, expected ${QP_INDEX}`);
  return [...base, qp];
}

export function featureVector(shot: ShotInput, r: RenditionInput, qp: number): number[] {
  return withQp(shotFeatures(shot, r), qp);
}

/** Class back from a stored row (the one-hot columns), for per-class metrics and floors. */
export function classOf(features: readonly number[]): ShotClass {
  const i = SHOT_CLASSES.findIndex((_, k) => features[6 + k] === 1);
  if (i < 0) throw new RangeError('rate features: no class column is set');
  return SHOT_CLASSES[i]!;
}
