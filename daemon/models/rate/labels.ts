import type { Db } from '../../db/db.js';
import type { EncodeRow } from './sweep.js';

/**
 * What people said (the `feedback` table, issue 13 item 3) joined to the rate model's rows.
 *
 * The rule: a label from a person outweighs a measured one.
 * - Only "¿Se leía bien el texto?" answers concern the picture the rate model predicts; voice
 *   answers go to the audio, which this model does not choose (they are counted, not used).
 * - Per shot of a lesson the verdict is a teacher's "bad" when there is one (the teacher chose
 *   the span), else the students' majority ("bad" only when more said no than yes).
 * - It applies to the rows of that shot the box recorded up to the last answer: the encodes of
 *   the package people saw (a re-encode made after it is measured afresh and left alone).
 * - "bad": the row's target becomes at most floor − BAD_MARGIN, whatever OCR/SSIM measured.
 *   The measure said the shot passed, a person could not read it: the model must learn that
 *   this content at this QP sits under the floor, so it picks a lower QP next time.
 * - "ok" keeps the measured target: the person confirms the measure.
 * - Either way the row's weight becomes PERSON_WEIGHT, so in the loss one person-labelled row
 *   counts as PERSON_WEIGHT measured ones.
 * Labelled rows keep their lesson, so the held-out split (train.ts splitByLecture) puts them
 * where it puts their lecture: the same rule, and a labelled lecture held out grades the model
 * against what people said.
 */
export const PERSON_WEIGHT = 4;
export const BAD_MARGIN = 0.02;

export interface PersonLabel {
  lesson: string;
  shot: number;
  kind: 'text' | 'voice';
  answer: 'ok' | 'bad';
  source: 'student' | 'teacher';
  at: number;
}

export function loadLabels(db: Db): PersonLabel[] {
  return (db.prepare('SELECT lesson_id AS lesson, shot_index AS shot, kind, answer, source, at FROM feedback ORDER BY id').all() as PersonLabel[]);
}

export interface Verdict { answer: 'ok' | 'bad'; at: number; by: 'teacher' | 'students' }

export function verdicts(labels: readonly PersonLabel[]): Map<string, Verdict> {
  const per = new Map<string, { teacherBad: number; bad: number; ok: number; at: number }>();
  for (const l of labels) {
    if (l.kind !== 'text') continue;
    const k = `${l.lesson}\u0000${l.shot}`;
    const p = per.get(k) ?? { teacherBad: 0, bad: 0, ok: 0, at: 0 };
    if (l.source === 'teacher') { if (l.answer === 'bad') p.teacherBad = Math.max(p.teacherBad, l.at); } else if (l.answer === 'bad') p.bad++; else p.ok++;
    p.at = Math.max(p.at, l.at);
    per.set(k, p);
  }
  const out = new Map<string, Verdict>();
  for (const [k, p] of per) {
    if (p.teacherBad) out.set(k, { answer: 'bad', at: p.at, by: 'teacher' });
    else if (p.bad + p.ok > 0) out.set(k, { answer: p.bad > p.ok ? 'bad' : 'ok', at: p.at, by: 'students' });
  }
  return out;
}

export interface LabelReport {
  /** answers in the table, and how many concern the picture (text) */
  answers: number;
  textAnswers: number;
  /** shots with a verdict */
  shots: number;
  /** training rows a label reached, of which their target was lowered */
  rows: number;
  lowered: number;
  weight: number;
}

export function applyLabels(rows: readonly EncodeRow[], labels: readonly PersonLabel[]): { rows: EncodeRow[]; report: LabelReport } {
  const v = verdicts(labels);
  let reached = 0; let lowered = 0;
  const out = rows.map((r) => {
    const verdict = v.get(`${r.lesson}\u0000${r.shot}`);
    if (!verdict || r.at === undefined || r.at > verdict.at) return r;
    reached++;
    if (verdict.answer === 'ok') return { ...r, weight: PERSON_WEIGHT };
    const target = Math.min(r.quality.value, r.quality.floor - BAD_MARGIN);
    if (target < r.quality.value) lowered++;
    return { ...r, quality: { ...r.quality, value: target }, weight: PERSON_WEIGHT };
  });
  return {
    rows: out,
    report: { answers: labels.length, textAnswers: labels.filter((l) => l.kind === 'text').length, shots: v.size, rows: reached, lowered, weight: PERSON_WEIGHT },
  };
}
