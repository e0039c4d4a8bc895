import { withMoreBits, type Plan } from './plan.js';

/**
 * "Volver a codificar con más calidad": the teacher saw a lesson published under its floor and
 * asked for more. The boost is applied to the plan before the first encode, so plan.json says
 * what was done: each level is one more-bits step of QP_STEP on the shots that missed last time
 * (all of the lowest rendition when the misses are not known), the reason of each boosted shot
 * says so, and the optimizer gets `level` more attempts.
 */
export interface Boost {
  /** 1..MAX_BOOST */
  level: number;
  /** where the previous package missed (seconds); absent: the whole lowest rendition */
  spans?: Array<{ start: number; end: number; kind?: string | undefined }> | undefined;
}

export const MAX_BOOST = 3;
const QP_STEP = 3;
/** Opus bits added per level when the speech missed */
const OPUS_STEP = 6000;

export function withBoost(plan: Plan, boost: Boost): Plan {
  const level = Math.max(0, Math.min(MAX_BOOST, Math.floor(boost.level)));
  const r0 = plan.renditions[0];
  if (level === 0) return plan;
  const pictureSpans = boost.spans?.filter((s) => s.kind !== 'speech');
  const targets = plan.shots
    .filter((s) => !pictureSpans?.length || pictureSpans.some((m) => m.start < s.end && m.end > s.start))
    .map((s) => s.index);
  let out = plan;
  if (r0 && (!boost.spans || pictureSpans?.length)) {
    out = withMoreBits(plan, r0.id, targets, QP_STEP * level);
    out = { ...out, shots: out.shots.map((s) => targets.includes(s.index) ? { ...s, reason: `${s.reason}; +${level} calidad pedida por el docente / teacher asked for more quality` } : s) };
  }
  const speech = !boost.spans || boost.spans.some((s) => s.kind === 'speech');
  if (speech && out.audio) {
    // the gate goes first: a pause cut too eagerly clips words whatever the bitrate
    out = { ...out, audio: { ...out.audio, gate: undefined, opus: { ...out.audio.opus, bitrate: out.audio.opus.bitrate + OPUS_STEP * level } } };
  }
  return out;
}
