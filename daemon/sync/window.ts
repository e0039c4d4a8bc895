import { YachayError } from '../errors.js';

/**
 * When a school may use its link: the night window in the school's time zone (Intl, no tz
 * library), and a clock that trusts the hub when the box's own is implausible — a Raspberry Pi
 * has no battery clock and wakes up in 1970 after a power cut with no network time.
 */
export type SyncWindow = { always: true } | { always: false; start: number; end: number; text: string };

export function parseWindow(text: string): SyncWindow {
  if (text === 'always') return { always: true };
  const m = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  if (!m) throw new YachayError('YCH_ERR_CONFIG', `sync.window: must be "always" or HH:MM-HH:MM (got "${text}")`);
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  if (start === end) throw new YachayError('YCH_ERR_CONFIG', `sync.window: start and end are the same (${text}); use "always"`);
  return { always: false, start, end, text };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** minutes and seconds since local midnight in `timeZone` */
export function localClock(ms: number, timeZone: string): { minute: number; second: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return { minute: Number(parts.hour) * 60 + Number(parts.minute), second: Number(parts.second) };
}

function within(w: Extract<SyncWindow, { always: false }>, minute: number): boolean {
  // a window that crosses midnight (22:00-05:00) is the union of its two halves
  return w.start < w.end ? minute >= w.start && minute < w.end : minute >= w.start || minute < w.end;
}

export function inWindow(w: SyncWindow, ms: number, timeZone: string): boolean {
  return w.always || within(w, localClock(ms, timeZone).minute);
}

/**
 * The next moment the window opens (now, if it is open). Walks minute boundaries rather than
 * adding the offset once, so a daylight-saving jump in a zone that has one is still right.
 */
export function nextWindowAt(w: SyncWindow, ms: number, timeZone: string): number {
  if (inWindow(w, ms, timeZone)) return ms;
  const { minute, second } = localClock(ms, timeZone);
  const w2 = w as Extract<SyncWindow, { always: false }>;
  let t = ms - second * 1000 - (ms % 1000) + ((w2.start - minute + 1440) % 1440) * 60_000;
  // at most one correction each way for an offset change between now and then
  for (let i = 0; i < 3 && !inWindow(w, t, timeZone); i++) t += ((w2.start - localClock(t, timeZone).minute + 1440) % 1440) * 60_000;
  return t;
}

/** before this no box ever ran: a clock showing earlier is a Pi that lost its time */
export const PLAUSIBLE_AFTER = Date.UTC(2025, 0, 1);
/** further from the hub than this and the hub's time wins (a Date header has 1 s resolution) */
const MAX_SKEW_MS = 10 * 60_000;

export class HubClock {
  private offset: number | undefined;
  constructor(private readonly local: () => number = Date.now) {}

  /** a Date header (ms) seen in a hub or origin response */
  observe(hubMs: number | undefined): void {
    if (hubMs === undefined || !Number.isFinite(hubMs) || hubMs < PLAUSIBLE_AFTER) return;
    this.offset = hubMs - this.local();
  }

  get known(): boolean { return this.offset !== undefined; }

  /** whether the local clock can be believed as it is */
  localPlausible(): boolean {
    const t = this.local();
    if (t < PLAUSIBLE_AFTER) return false;
    return this.offset === undefined || Math.abs(this.offset) <= MAX_SKEW_MS;
  }

  /** the time the window follows; undefined when the local clock is implausible and no hub answered yet */
  now(): number | undefined {
    if (this.localPlausible()) return this.local();
    return this.offset === undefined ? undefined : this.local() + this.offset;
  }
}
