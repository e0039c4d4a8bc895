import type { Floors } from '../../config/schema.js';
import type { Plan } from '../../optimize/plan.js';
import type { Shot } from '../../optimize/shots.js';
import type { VerifyReport } from '../../optimize/verify.js';
import { shotFeatures, withQp } from './features.js';
import { floorOf, type EncodeRow } from './sweep.js';

/**
 * The feedback loop's input: every verified encode of a real lesson becomes training rows, one
 * per shot the verify stage measured (its OCR or SSIM checks, weighted as verify weighs them),
 * with the features and the settings that produced it. Bytes per shot are not known inside a
 * whole-lesson encode: they are recorded as 0, which the rate model does not use.
 */
export function observedRows(lesson: string, plan: Plan, shots: readonly Shot[], report: VerifyReport, floors: Floors): EncodeRow[] {
  const low = plan.renditions[0];
  if (!low || report.rendition !== low.id) return [];
  const acc = new Map<number, { v: number; w: number }>();
  for (const c of report.checks) {
    if ((c.kind !== 'ocr' && c.kind !== 'ssim') || c.shot === undefined || c.weight <= 0) continue;
    const a = acc.get(c.shot) ?? { v: 0, w: 0 };
    a.v += c.value * c.weight; a.w += c.weight;
    acc.set(c.shot, a);
  }
  const rows: EncodeRow[] = [];
  for (const [i, shot] of shots.entries()) {
    const a = acc.get(shot.index);
    const s = low.shots[i];
    if (!a || !s) continue;
    const { metric, floor } = floorOf(shot.cls, floors);
    rows.push({
      lesson, shot: shot.index, cls: shot.cls,
      features: withQp(shotFeatures(shot, { width: low.width, height: low.height, fps: s.fps }), s.qp),
      settings: { qp: s.qp, fps: s.fps, width: low.width, height: low.height },
      quality: { metric, value: a.v / a.w, floor },
      bytes: 0,
    });
  }
  return rows;
}
