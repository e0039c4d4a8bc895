import type { Miss } from './verify.js';

/**
 * Whether another encode can still bring a missed shot up to its held floor. Each attempt
 * costs a re-encode and a verify; on the hour, two whole attempts bought 13 misses → 12. A shot
 * is given up, with the reason kept for report.json, when
 * - its last attempt gained less than MIN_GAIN (more bits stopped helping: noise, or a ceiling
 *   the measure cannot see), or
 * - at the rate of its last attempt, the attempts left cannot close the gap.
 * A shot's first miss is always retried once: there is nothing yet to predict from.
 */
export const MIN_GAIN = { text: 0.005, picture: 0.002, speech: 0.002 } as const;

export interface GiveUp {
  shot?: number | undefined;
  kind: Miss['kind'];
  value: number;
  floor: number;
  reason: string;
}

export function missKey(m: Pick<Miss, 'shot' | 'kind'>): string {
  return m.shot === undefined ? m.kind : `${m.kind}:${m.shot}`;
}

/**
 * `history`: for each miss key, the value measured at every attempt so far (the last is the
 * current one). `attemptsLeft`: encodes still allowed after this one.
 */
export function worthRetrying(misses: readonly Miss[], history: ReadonlyMap<string, readonly number[]>, attemptsLeft: number): { retry: Miss[]; giveUp: GiveUp[] } {
  const retry: Miss[] = []; const giveUp: GiveUp[] = [];
  for (const m of misses) {
    const seen = history.get(missKey(m)) ?? [];
    const gap = m.floor - m.value;
    if (seen.length < 2) { retry.push(m); continue; }
    const gain = seen[seen.length - 1]! - seen[seen.length - 2]!;
    const stop = (reason: string): void => { giveUp.push({ shot: m.shot, kind: m.kind, value: m.value, floor: m.floor, reason }); };
    if (gain < MIN_GAIN[m.kind]) stop(`the last attempt gained ${gain.toFixed(4)} (< ${MIN_GAIN[m.kind]}): more bits stopped helping`);
    else if (gain * attemptsLeft < gap) stop(`the gap ${gap.toFixed(4)} is more than ${attemptsLeft} attempt(s) at the last gain ${gain.toFixed(4)} can close`);
    else retry.push(m);
  }
  return { retry, giveUp };
}
