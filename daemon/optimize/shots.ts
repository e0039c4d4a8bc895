import type { Analysis, AudioFeatures, VideoFeatures } from './analyse.js';

/**
 * Cuts the lesson into shots and says what each one is. The thresholds were calibrated on
 * generated lectures (slides, board, talking head, fractal motion) decoded at 160x90 gray;
 * `test/unit/optimize/shots.test.ts` pins them with synthetic feature series.
 */
export type ShotClass = 'slide' | 'board' | 'talking_head' | 'motion';
export type AudioKind = 'speech' | 'music' | 'silence' | 'none';

export interface ShotStats {
  /** median mean-abs-diff between analysis frames (luma levels) */
  diff: number;
  /** 90th percentile of the same: catches a board being written in bursts */
  diffP90: number;
  ti: number;
  si: number;
  edges: number;
  /** edge density at the end minus at the start: writing on a board adds edges */
  edgeGrowth: number;
  /**
   * median diff left once the change of the whole picture's mean brightness is taken out: a
   * camera's auto-exposure hunting or a projector's flicker shifts every pixel alike, which is
   * not motion. Absent in stats made before it existed; then `diff` stands in.
   */
  steadyDiff?: number;
}

export interface AudioStats { speech: number; music: number; silence: number; kind: AudioKind }

export interface Shot {
  index: number;
  start: number;
  end: number;
  cls: ShotClass;
  video: ShotStats;
  audio: AudioStats;
}

/** A cut needs a jump this large (mean abs luma diff) ... */
export const CUT_MIN_DIFF = 10;
/** ... and this many times the recent median, so continuous motion is not cut into pieces. */
export const CUT_RATIO = 3;
/** ... or, with a still picture on both sides, this large and STRONG_CUT_RATIO times the noise. */
export const STILL_CUT_MIN_DIFF = 4;
export const MIN_SHOT_SEC = 1.5;
/**
 * Below STATIC_DIFF a shot is still unless something moves in one place: sensor noise changes
 * every pixel a little (TI ≈ 1.25 × mean diff for Gaussian noise), a moving head changes some
 * pixels a lot (TI ≈ 3 × mean diff on generated lectures). A pen on a board stays under STATIC_TI.
 */
export const STATIC_DIFF = 1.5;
export const STATIC_TI = 1.0;
export const NOISE_TI_RATIO = 1.6;
/**
 * Above this median diff (or TI) the shot is motion/demo. Film shots measured 5.2–6.8 (opencv-doc's
 * Megamind trailer) and a fractal zoom 13; the busiest real fixed-camera scenes stay below 2.3
 * (pedestrians 2.3, projected slides with flicker 1.9) and generated talking heads below 2.
 */
export const MOTION_DIFF = 4;
export const MOTION_TI = 14;
export const BOARD_EDGE_GROWTH = 0.008;
/**
 * Share of the frame that changes, estimated as (diff / TI)²: a change of size A over a share f
 * of the pixels has mean |diff| = f·A and TI (its standard deviation) ≈ A·√f. A mouse pointer
 * moving over a page measured 0.0005 of the frame, the smallest moving head 0.017: below
 * POINTER_AREA the thing that moves is too small to be a person and the shot stays a still.
 */
export const POINTER_AREA = 0.002;
/**
 * A cut between two moving shots is kept when its jump is this many times the busier side's
 * median diff: a fractal zoom's largest frame-to-frame jump is 2.7× its median (generated
 * lecture es-1), a film's scene cuts 6–10× (Megamind trailer).
 */
export const STRONG_CUT_RATIO = 5;

const SILENCE_RMS = 0.004; // about -48 dBFS

function median(xs: ArrayLike<number>, from = 0, to = xs.length): number {
  if (to <= from) return 0;
  const s = Array.prototype.slice.call(xs, from, to).sort((a: number, b: number) => a - b) as number[];
  return s[Math.floor((s.length - 1) / 2)]!;
}

function quantile(xs: ArrayLike<number>, q: number, from = 0, to = xs.length): number {
  if (to <= from) return 0;
  const s = Array.prototype.slice.call(xs, from, to).sort((a: number, b: number) => a - b) as number[];
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))]!;
}

function mean(xs: ArrayLike<number>, from = 0, to = xs.length): number {
  if (to <= from) return 0;
  let s = 0;
  for (let i = from; i < to; i++) s += xs[i]!;
  return s / (to - from);
}

/** Frame indices where a new shot starts (always includes 0). */
export function detectCuts(v: VideoFeatures): number[] {
  const cuts = [0];
  const minGap = Math.max(1, Math.round(MIN_SHOT_SEC * v.fps));
  for (let i = 1; i < v.diff.length; i++) {
    const d = v.diff[i]!;
    if (d < STILL_CUT_MIN_DIFF) continue;
    // nothing after it to compare with, and a shot too short to be one (real clips end mid-pan)
    if (v.diff.length - i < minGap) continue;
    // a jump counts when it stands out from the picture on at least one side of it (motion →
    // slide is a cut: quiet after; a jump inside a fractal zoom is not: busy on both sides) and
    // from its immediate neighbours (a cut is one frame, motion is every frame)
    const last = cuts[cuts.length - 1]!;
    const before = median(v.diff, Math.max(last + 1, i - 2 * minGap), i);
    const after = median(v.diff, i + 1, Math.min(v.diff.length, i + 1 + 2 * minGap));
    // between two still pictures a smaller jump is a change of page: a screen recording turns
    // one page of 14 px text for another with a mean change of 9 levels at 160x90
    const still = Math.max(before, after) < STATIC_DIFF;
    if (d < (still ? Math.max(STILL_CUT_MIN_DIFF, STRONG_CUT_RATIO * Math.max(before, after)) : CUT_MIN_DIFF)) continue;
    if (d < CUT_RATIO * Math.max(Math.min(before, after), 1)) continue;
    const neighbours = ((v.diff[i - 1] ?? 0) + (v.diff[i + 1] ?? 0)) / 2;
    if (d < 1.5 * neighbours) continue;
    if (i - cuts[cuts.length - 1]! < minGap) {
      // two jumps close together (a fade or a flash): keep the shot that started earlier
      continue;
    }
    cuts.push(i);
  }
  return cuts;
}

export function videoStats(v: VideoFeatures, from: number, to: number): ShotStats {
  // skip the first frame of a shot: its diff is the cut itself
  const a = Math.min(from + 1, to);
  const k = Math.max(1, Math.round(v.fps));
  return {
    diff: median(v.diff, a, to),
    diffP90: quantile(v.diff, 0.9, a, to),
    ti: median(v.ti, a, to),
    si: median(v.si, from, to),
    edges: mean(v.edges, from, to),
    edgeGrowth: mean(v.edges, Math.max(from, to - k), to) - mean(v.edges, from, Math.min(to, from + k)),
    steadyDiff: median(steadyDiffs(v, a, to)),
  };
}

/** Per frame: the diff not explained by a change of mean brightness (never below 0). */
function steadyDiffs(v: VideoFeatures, from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) {
    const shift = i > 0 ? Math.abs(v.luma[i]! - v.luma[i - 1]!) : 0;
    out.push(Math.max(0, v.diff[i]! - shift));
  }
  return out;
}

export function classify(s: ShotStats): ShotClass {
  if (s.diff >= MOTION_DIFF || s.ti >= MOTION_TI) return 'motion';
  // how much changes is judged without the brightness shifts; how it is spread, with them (a
  // shift of the whole picture changes every pixel a little, like noise)
  const d = Math.min(s.diff, s.steadyDiff ?? s.diff);
  const noiseLike = s.ti <= NOISE_TI_RATIO * s.diff + 0.3;
  const pointerOnly = s.ti > 0 && (s.diff / s.ti) ** 2 < POINTER_AREA;
  if (d < STATIC_DIFF && (s.ti < STATIC_TI || noiseLike || pointerOnly)) return s.edgeGrowth > BOARD_EDGE_GROWTH ? 'board' : 'slide';
  return 'talking_head';
}

/**
 * Speech has syllables and pauses: its frame energy swings widely within a second, while music
 * holds a steadier envelope. This heuristic is what the VAD model (issue 4) replaces.
 */
export function audioStats(a: AudioFeatures | undefined, start: number, end: number): AudioStats {
  if (!a) return { speech: 0, music: 0, silence: 0, kind: 'none' };
  const from = Math.max(0, Math.floor(start / a.frameSec));
  const to = Math.min(a.rms.length, Math.ceil(end / a.frameSec));
  const win = Math.round(1 / a.frameSec);
  let speech = 0; let music = 0; let silence = 0;
  for (let w = from; w < to; w += win) {
    const e = Math.min(to, w + win);
    const loud = mean(a.rms, w, e);
    if (loud < SILENCE_RMS) { silence += e - w; continue; }
    // share of frames well below the window's level: the gaps between syllables
    let gaps = 0;
    for (let i = w; i < e; i++) if (a.rms[i]! < 0.3 * loud) gaps++;
    if (gaps / (e - w) > 0.12) speech += e - w; else music += e - w;
  }
  const n = Math.max(1, to - from);
  const r = { speech: speech / n, music: music / n, silence: silence / n };
  const kind: AudioKind = r.silence > 0.8 ? 'silence' : r.music > r.speech ? 'music' : 'speech';
  return { ...r, kind };
}

export function findShots(an: Analysis, duration: number): Shot[] {
  const v = an.video;
  if (!v || v.diff.length === 0) {
    return [{ index: 0, start: 0, end: duration, cls: 'slide', video: emptyStats(), audio: audioStats(an.audio, 0, duration) }];
  }
  const cuts = mergeMoving(v, detectCuts(v));
  return cuts.map((from, i) => {
    const to = cuts[i + 1] ?? v.diff.length;
    const start = i === 0 ? 0 : from / v.fps;
    const end = i === cuts.length - 1 ? duration : to / v.fps;
    const stats = videoStats(v, from, to);
    return { index: i, start, end, cls: classify(stats), video: stats, audio: audioStats(an.audio, start, end) };
  });
}

/**
 * A fractal zoom or a pan can jump enough to look like a cut; two neighbouring moving shots of
 * the same class gain nothing from a keyframe between them, so they are joined. Slides never
 * are: each slide change needs its keyframe. Nor is a strong cut (STRONG_CUT_RATIO): a film's
 * change of scene is where the encoder needs a keyframe most.
 */
export function mergeMoving(v: VideoFeatures, cuts: number[]): number[] {
  const out: number[] = [];
  let prev: { cls: ShotClass; diff: number } | undefined;
  cuts.forEach((from, i) => {
    const stats = videoStats(v, from, cuts[i + 1] ?? v.diff.length);
    const cls = classify(stats);
    const moving = cls === 'motion' || cls === 'talking_head';
    const strong = prev !== undefined && v.diff[from]! >= STRONG_CUT_RATIO * Math.max(prev.diff, stats.diff, 1);
    if (out.length && prev?.cls === cls && moving && !strong) return;
    out.push(from);
    // a merged shot's busyness is that of its first piece: close enough for the next comparison
    prev = { cls, diff: stats.diff };
  });
  return out;
}

function emptyStats(): ShotStats {
  return { diff: 0, diffP90: 0, ti: 0, si: 0, edges: 0, edgeGrowth: 0, steadyDiff: 0 };
}

/** 1-second windows judged as speech, merged: where intelligibility is measured. */
export function speechIntervals(a: AudioFeatures | undefined): Array<{ start: number; end: number }> {
  if (!a) return [];
  const out: Array<{ start: number; end: number }> = [];
  const step = 1;
  for (let t = 0; t < a.rms.length * a.frameSec; t += step) {
    const s = audioStats(a, t, t + step);
    if (s.kind !== 'speech' || s.speech < 0.5) continue;
    const last = out[out.length - 1];
    if (last && Math.abs(last.end - t) < 1e-6) last.end = t + step;
    else out.push({ start: t, end: t + step });
  }
  return out;
}
