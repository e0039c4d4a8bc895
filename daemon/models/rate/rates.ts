import { YachayError } from '../../errors.js';
import type { ShotClass } from '../../optimize/shots.js';
import { FEATURE_NAMES, QP_INDEX, SHOT_CLASSES, classOf } from './features.js';
import { pickQp } from './predict.js';
import type { RateSession } from './predict.js';

/**
 * Frame rate as a second lever of the rate model: the parsing of `collect --rates/--classes`
 * (what the sweep codes) lives here with the choice of (fps, QP) per shot (what the plan uses).
 */

/** ["motion=3,6,10", "talking_head=10,15"] → { motion: [3, 6, 10], talking_head: [10, 15] }. */
export function parseRates(specs: string | readonly string[] | boolean | undefined): Partial<Record<ShotClass, number[]>> | undefined {
  if (specs === undefined || typeof specs === 'boolean') return undefined;
  const out: Partial<Record<ShotClass, number[]>> = {};
  for (const spec of typeof specs === 'string' ? [specs] : specs) {
    const m = /^\s*([a-z_]+)\s*=\s*([\d,\s]+)$/.exec(spec);
    const cls = m?.[1] as ShotClass | undefined;
    if (!m || !cls || !SHOT_CLASSES.includes(cls)) {
      throw new YachayError('YCH_ERR_USAGE', `--rates takes CLASS=FPS,FPS with CLASS one of ${SHOT_CLASSES.join(', ')}, e.g. --rates motion=3,6,10 (got ${spec})`);
    }
    const fps = m[2]!.split(',').map((p) => Number(p.trim()));
    if (fps.some((f) => !Number.isInteger(f) || f < 1 || f > 60)) throw new YachayError('YCH_ERR_USAGE', `--rates ${cls}: frame rates are integers from 1 to 60 (got ${m[2]})`);
    out[cls] = [...new Set([...(out[cls] ?? []), ...fps])].sort((a, b) => a - b);
  }
  return out;
}

/** "motion,talking_head" → ['motion', 'talking_head']. */
export function parseClasses(spec: string | readonly string[] | boolean | undefined): ShotClass[] | undefined {
  if (typeof spec !== 'string') return undefined;
  const out = spec.split(',').map((c) => c.trim()).filter(Boolean);
  const bad = out.filter((c) => !SHOT_CLASSES.includes(c as ShotClass));
  if (!out.length || bad.length) throw new YachayError('YCH_ERR_USAGE', `--classes takes ${SHOT_CLASSES.join(', ')} separated by commas (got ${spec})`);
  return out as ShotClass[];
}

/**
 * The frame rates the model may choose for the lowest rendition, per class; all divide 30 so
 * the picked frames are evenly spaced. Text keeps its rules (1 and 3 fps: a slide's bytes are
 * its keyframes, not its frame rate).
 */
export const RATE_CHOICES: Partial<Record<ShotClass, readonly number[]>> = {
  motion: [3, 5, 6, 10, 15],
  talking_head: [10, 15, 30],
};

/**
 * How bytes grow with frames and fall with the quantiser (bytes ∝ fps^exponent · 2^(−qp /
 * halving)): what the picker compares candidates with. Only ratios between candidates of one
 * shot matter, so no constant term. Motion: the two training motion shots coded at 6/10/15 fps
 * × QP 39–48 (eval-en-4, eval-es-5, 2026-12-03) grew 0.62–0.69 per doubling of frames and
 * halved every 6.7–8.5 QPs. Talking heads were not swept in time: the same numbers.
 */
export const BYTES_FIT: Partial<Record<ShotClass, { exponent: number; halving: number }>> = {
  motion: { exponent: 0.65, halving: 7.5 },
  talking_head: { exponent: 0.65, halving: 7.5 },
};

export function relativeBytes(cls: ShotClass, fps: number, qp: number): number {
  const fit = BYTES_FIT[cls] ?? { exponent: 0.65, halving: 7.5 };
  return fps ** fit.exponent * 2 ** (-qp / fit.halving);
}

export const FPS_INDEX = FEATURE_NAMES.indexOf('fps');

export interface RatePick { fps: number; qp: number; bytes: number }

/**
 * Per frame rate the class may use (none above the source's), the coarsest QP the model still
 * expects to pass (pickQp's walk); of those pairs, the one the byte fit says is cheapest. No
 * pair passing → undefined (the caller keeps the rules).
 */
export async function pickRate(session: RateSession, shotFeatures: readonly number[], floor: number,
  opts: { margin: number; baseFps: number; ruleFps: number; choices?: readonly number[] | undefined }): Promise<RatePick | undefined> {
  if (shotFeatures.length !== QP_INDEX) throw new RangeError(`pickRate: ${shotFeatures.length} shot features, expected ${QP_INDEX}`);
  const cls = classOf(shotFeatures);
  const rates = [...new Set([...(opts.choices ?? RATE_CHOICES[cls] ?? []), opts.ruleFps].map((f) => Math.min(f, opts.baseFps)))];
  let best: RatePick | undefined;
  for (const fps of rates) {
    const feats = [...shotFeatures];
    feats[FPS_INDEX] = fps;
    const qp = await pickQp(session, feats, floor, { margin: opts.margin, fallback: Number.NaN });
    if (Number.isNaN(qp)) continue;
    const bytes = relativeBytes(cls, fps, qp);
    // ties go to the rules' rate: fewer surprises in the package for the same bytes
    if (!best || bytes < best.bytes - 1e-12 || (Math.abs(bytes - best.bytes) <= 1e-12 && fps === opts.ruleFps)) best = { fps, qp, bytes };
  }
  return best;
}
