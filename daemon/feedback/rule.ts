/**
 * When what people said about a lesson is enough to code some of its shots again with more bits.
 *
 * - A teacher's flag is enough on its own: the teacher knows the lesson and chose the span.
 * - Students: at least `studentBadPerShot` "no" on one shot and question (text or voice), and
 *   more "no" than "yes" there. One phone on a bad connection, or one student who dislikes the
 *   lesson, should not cost the box an encode; a shot most watchers found unreadable should.
 *
 * Only answers not yet acted on count (a re-encode marks the answers it answered), so the
 * same complaint never queues two encodes.
 */
export type FeedbackKind = 'text' | 'voice';
export type FeedbackAnswer = 'ok' | 'bad';
export type FeedbackSource = 'student' | 'teacher';

export interface FeedbackRule {
  studentBadPerShot: number;
}

export interface Answer {
  shot: number;
  kind: FeedbackKind;
  answer: FeedbackAnswer;
  source: FeedbackSource;
}

export interface Triggered {
  shot: number;
  kind: FeedbackKind;
  /** why, for the log and the job's report */
  because: 'teacher' | 'students';
}

export function triggered(pending: readonly Answer[], rule: FeedbackRule): Triggered[] {
  const tally = new Map<string, { shot: number; kind: FeedbackKind; bad: number; ok: number; teacher: boolean }>();
  for (const a of pending) {
    const key = `${a.kind}:${a.shot}`;
    const t = tally.get(key) ?? { shot: a.shot, kind: a.kind, bad: 0, ok: 0, teacher: false };
    if (a.source === 'teacher') t.teacher ||= a.answer === 'bad';
    else if (a.answer === 'bad') t.bad++;
    else t.ok++;
    tally.set(key, t);
  }
  const out: Triggered[] = [];
  for (const t of tally.values()) {
    if (t.teacher) out.push({ shot: t.shot, kind: t.kind, because: 'teacher' });
    else if (t.bad >= rule.studentBadPerShot && t.bad > t.ok) out.push({ shot: t.shot, kind: t.kind, because: 'students' });
  }
  return out.sort((a, b) => a.shot - b.shot || a.kind.localeCompare(b.kind));
}

export interface ShotSpan { index: number; start: number; end: number }

/**
 * The optimizer's boost spans (optimize/boost.ts) for the shots to improve: text → the picture
 * of that shot (more video bits), voice → speech (more Opus bits, no pause gate).
 */
export function boostSpans(shots: readonly ShotSpan[], want: ReadonlyArray<{ shot: number; kind: FeedbackKind }>): Array<{ start: number; end: number; kind: string }> {
  const out: Array<{ start: number; end: number; kind: string }> = [];
  const seen = new Set<string>();
  for (const w of want) {
    const s = shots.find((x) => x.index === w.shot);
    const key = `${w.kind}:${w.shot}`;
    if (!s || seen.has(key)) continue;
    seen.add(key);
    out.push({ start: s.start, end: s.end, kind: w.kind === 'voice' ? 'speech' : 'text' });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** the shots a time range touches (a teacher's "marcar este tramo"); touching at an edge is not enough */
export function shotsIn(shots: readonly ShotSpan[], start: number, end: number): number[] {
  if (end <= start) {
    const s = shots.find((x) => start >= x.start && start < x.end) ?? shots[shots.length - 1];
    return s ? [s.index] : [];
  }
  return shots.filter((s) => s.start < end && s.end > start).map((s) => s.index);
}
