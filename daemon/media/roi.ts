import { shotTree } from './expr.js';

/**
 * The face model's region of interest turned into fewer bytes. Inside a talking-head shot the
 * picture outside the region (the face and what is shown below it) is softened with a light
 * Gaussian blur before x264 sees it; the region itself is pasted back untouched. The encoder
 * keeps constant QP through the plan's zones, so every shot keeps exactly the quantiser the
 * plan gave it, and shots without a region are not touched at all.
 *
 * Measured with test/bench/roi.sh: 6 s 640x360 15 fps, the astronaut photo moving over a noisy
 * testsrc2; shot 0 (2 s) has no region, shot 1 (4 s) a face box of 272x224 (26% of the frame).
 * v0 settings (QP 37, preset medium). Shot 1:
 *
 *   encode                                   bytes         frame SSIM   region SSIM
 *   today (CQP 37)                           42 775         0.8530       0.8723
 *   CQP 37 + addroi −5 / +6                  42 775         0.8530       0.8723   (ignored)
 *   CRF + AQ ε + zones, no region            40 237 −6%     0.8445       0.8559   (keyframe drift)
 *   CRF + AQ ε + zones, region −2 / out +8   33 028 −23%    0.8207       0.8686
 *   CRF + AQ ε + zones, region −4 / out +8   38 580 −10%    0.8249       0.8800
 *   CQP 37 + blur outside, sigma 0.8         35 551 −17%    0.8439       0.8716
 *   CQP 37 + blur outside, sigma 1 (chosen)  34 837 −19%    0.8376       0.8723
 *   CQP 37 + blur outside, sigma 1.5         32 862 −23%    0.8276       0.8715
 *
 * Shot 0 is byte-identical to today with the blur (24 133 B); the graph costs no measurable time.
 *
 * Why not x264's own ROI (ffmpeg `addroi`, which hands x264 per-macroblock QP offsets):
 * - with `-qp` x264 switches adaptive quantisation off and with it the offsets: the bytes are
 *   today's to the byte, and ffmpeg prints no warning;
 * - `aq-strength=0` does the same (x264 treats strength 0 as AQ off): the offsets need AQ on
 *   with a tiny strength (0.0001) and a rate-controlled mode, i.e. `-crf`;
 * - under `-crf`, zones `q=` pin P frames (B frames follow them), but every keyframe after the
 *   first takes its quantiser from a decaying average of the frames before it: the keyframe
 *   of a talking-head shot came out at QP 41 instead of 34, and that keyframe's quality
 *   depends on the shot before. Every shot of the rendition drifts, with or without a
 *   region, which breaks the plan's per-shot quality.
 * - addroi has no timeline in ffmpeg 5.1; `sidedata=mode=delete:type=REGIONS_OF_INTEREST`
 *   with `enable=` after it does work as a per-shot gate, should the offsets be wanted later.
 * The blur keeps CQP, saved as many bytes at equal region SSIM, and cost less frame SSIM: at
 * QP 37 the background's grain and fine texture is what x264 spends on and what a phone
 * screen barely shows. Sigma 1 takes most of the saving of 1.5 (−19% against −23%) for 60%
 * of its frame-SSIM loss (−0.015 against −0.025). The integration test (two region shots)
 * measured −21% bytes, region SSIM −0.002 and +0.003, frame SSIM −0.015.
 */
/** Normalised to the frame, as the face model gives it (ShotPlan.roi). */
export interface Rect { x: number; y: number; w: number; h: number }

/**
 * What the filter needs of an encoding plan (optimize/plan.ts's Plan and RenditionPlan fit):
 * media/ builds ffmpeg graphs and knows nothing of how a plan is made.
 */
export interface RoiPlan {
  duration: number;
  shots: ReadonlyArray<{ start: number; roi?: Rect | undefined }>;
}
export interface RoiRendition { id: string; width: number; height: number }

/** Gaussian sigma (output pixels) of the blur outside the region. */
export const ROI_BLUR_SIGMA = 1;
/** x264 codes 16×16 macroblocks: the region grows to whole ones so no block is half blurred. */
const MB = 16;
const EPS = 1e-4;

export interface PixelRect { x: number; y: number; w: number; h: number }

/**
 * A normalised rectangle in a width×height frame, grown outward to the macroblock grid and
 * clamped to the frame (even sizes, for 4:2:0 chroma). Undefined when it is empty, not a
 * number, or covers the whole frame (nothing left to save).
 */
export function roiPixels(rect: Rect, width: number, height: number): PixelRect | undefined {
  const { x, y, w, h } = rect;
  if (![x, y, w, h].every(Number.isFinite) || w <= 0 || h <= 0) return undefined;
  const even = (v: number): number => 2 * Math.floor(v / 2);
  const x0 = Math.max(0, Math.floor((x * width) / MB) * MB);
  const y0 = Math.max(0, Math.floor((y * height) / MB) * MB);
  const x1 = even(Math.min(width, Math.ceil(((x + w) * width) / MB) * MB));
  const y1 = even(Math.min(height, Math.ceil(((y + h) * height) / MB) * MB));
  if (x1 <= x0 || y1 <= y0) return undefined;
  if (x0 === 0 && y0 === 0 && x1 >= even(width) && y1 >= even(height)) return undefined;
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

export interface RoiBranch {
  /**
   * Filter-graph text to append right after the rendition branch's `format=yuv420p`, before
   * its output label: it opens with `,` and leaves the last filter's output for that label.
   */
  filter: string;
  /** indices of the shots that got a region */
  shots: number[];
}

/**
 * At most this many sharp windows are pasted back. ffmpeg's overlay makes its main frame
 * writable before it looks at `enable` (libavfilter framesync keeps a reference), so every
 * overlay in the chain copies every frame of the rendition, inside its shot or not. One
 * overlay per region shot made the 60-minute bench lecture's 28 regions cost more main-thread
 * time than x264 (28 copies of each 720p frame); a 3-minute clip with 11 region shots encoded
 * 1.7× slower than without regions. Regions are grouped instead: a group's window has the
 * largest size among its shots and moves to each shot's region.
 */
export const ROI_WINDOWS = 3;

interface Part { shot: number; start: number; end: number; px: PixelRect }
interface Window { w: number; h: number; parts: Part[] }

/**
 * Groups regions into at most `max` windows, each as large as its largest member: contiguous
 * runs of the regions sorted by area, split where the sharp area added beyond each region
 * (times its shot's length) is least.
 */
export function groupWindows(parts: readonly Part[], max = ROI_WINDOWS): Window[] {
  const sorted = [...parts].sort((a, b) => a.px.w * a.px.h - b.px.w * b.px.h || a.start - b.start);
  const n = sorted.length;
  const k = Math.min(max, n);
  // best[g][i]: least cost of sorted[0..i-1] in g windows; cut[g][i] where the last window starts.
  // The cost of sorted[j..i-1] sharing one window (extra sharp area × seconds) is kept as running
  // maxima and sums while j walks down, so the whole search is O(windows × regions²).
  const best = Array.from({ length: k + 1 }, () => new Array<number>(n + 1).fill(Infinity));
  const cut = Array.from({ length: k + 1 }, () => new Array<number>(n + 1).fill(0));
  best[0]![0] = 0;
  for (let g = 1; g <= k; g++) {
    for (let i = 1; i <= n; i++) {
      let w = 0; let h = 0; let seconds = 0; let areaSeconds = 0;
      for (let j = i - 1; j >= g - 1; j--) {
        const q = sorted[j]!;
        const d = q.end - q.start;
        w = Math.max(w, q.px.w); h = Math.max(h, q.px.h);
        seconds += d; areaSeconds += q.px.w * q.px.h * d;
        const c = best[g - 1]![j]! + (w * h * seconds - areaSeconds);
        // ≤: of equal costs the earliest cut wins, as a forward walk would pick it
        if (c <= best[g]![i]!) { best[g]![i] = c; cut[g]![i] = j; }
      }
    }
  }
  const windows: Window[] = [];
  for (let g = k, i = n; g > 0; g--) {
    const j = cut[g]![i]!;
    const members = sorted.slice(j, i);
    windows.unshift({
      w: Math.max(...members.map((m) => m.px.w)),
      h: Math.max(...members.map((m) => m.px.h)),
      parts: members.sort((a, b) => a.start - b.start),
    });
    i = j;
  }
  return windows.filter((w) => w.parts.length > 0);
}

/** `t` inside one of `parts` (sorted by start): a tree, so hundreds of shots stay parseable. */
function during(parts: readonly Part[]): string {
  return shotTree(parts.map((q) => q.start), (i) => `gte(t,${(parts[i]!.start - EPS).toFixed(4)})*lt(t,${(parts[i]!.end - EPS).toFixed(4)})`);
}

/**
 * The region-of-interest part of one rendition's branch, or undefined when no shot has a
 * usable region (then the encode is exactly what it was without this module). `regions` is
 * in Plan.shots order; by default the plan's own `roi` fields.
 *
 * Graph: the frame is split into one copy to blur and one copy per window; the blur runs only
 * inside region shots, and each window crops the sharp frame where the current shot's region
 * is (x and y follow the shot, evaluated per frame) and is overlaid back only inside its own
 * shots (`enable=`; t is the source time the branch's select keeps). A window larger than the
 * shot's region starts at the region and is pulled back inside the frame, so it always covers it.
 */
export function roiForRendition(plan: RoiPlan, r: RoiRendition,
  regions: ReadonlyArray<Rect | undefined> = plan.shots.map((s) => s.roi)): RoiBranch | undefined {
  const parts: Part[] = [];
  plan.shots.forEach((s, i) => {
    const rect = regions[i];
    const px = rect && roiPixels(rect, r.width, r.height);
    if (!px) return;
    parts.push({ shot: i, start: s.start, end: plan.shots[i + 1]?.start ?? plan.duration + 1, px });
  });
  if (parts.length === 0) return undefined;
  const windows = groupWindows(parts);
  const p = `roi${r.id}`;
  const crops = windows.map((_, k) => `[${p}c${k}]`).join('');
  const graph = [`,split=${windows.length + 1}[${p}b]${crops}`];
  const place = windows.map((win) => {
    const at = (f: (q: Part) => number): string => {
      const starts = win.parts.map((q) => q.start);
      return shotTree(starts, (i) => String(f(win.parts[i]!)));
    };
    return {
      x: at((q) => Math.min(q.px.x, r.width - win.w)),
      y: at((q) => Math.min(q.px.y, r.height - win.h)),
    };
  });
  windows.forEach((win, k) => graph.push(`;[${p}c${k}]crop=w=${win.w}:h=${win.h}:x='${place[k]!.x}':y='${place[k]!.y}'[${p}r${k}]`));
  graph.push(`;[${p}b]gblur=sigma=${ROI_BLUR_SIGMA}:enable='${during([...parts].sort((a, b) => a.start - b.start))}'[${p}m0]`);
  windows.forEach((win, k) => {
    const out = k < windows.length - 1 ? `[${p}m${k + 1}]` : '';
    graph.push(`;[${p}m${k}][${p}r${k}]overlay=x='${place[k]!.x}':y='${place[k]!.y}':eval=frame:enable='${during(win.parts)}'${out}`);
  });
  return { filter: graph.join(''), shots: parts.map((q) => q.shot) };
}
