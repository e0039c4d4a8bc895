import { join } from 'node:path';
import { run } from '../media/run.js';
import { grabFrame, ocrFrame, wordRecall, type OcrLang } from '../quality/ocr.js';
import { ssimWindow } from '../quality/ssim.js';

/**
 * What the recording itself allows, measured only for shots that missed their floor. A floor
 * is a promise relative to the source: on a noisy camera (slow zoom, shake, sensor noise) the
 * talking head measured SSIM 0.906 → 0.918 → 0.927 under a 0.95 floor, and an encode with 4x
 * the bytes reached 0.928. No encoder keeps noise it cannot predict, so a shot is held to
 * min(floor, ceiling − CEILING_MARGIN).
 */
export const CEILING_MARGIN = 0.01;
/** x264 QP for the picture ceiling: well above what any student's rendition will spend */
export const CEILING_QP = 18;

export function heldFloor(floor: number, ceiling: number | undefined): number {
  return ceiling === undefined ? floor : Math.min(floor, ceiling - CEILING_MARGIN);
}

export interface PictureWindow {
  start: number;
  duration: number;
  /** output size and frame rates of the shot in the lowest rendition */
  width: number;
  height: number;
  baseFps: number;
  fps: number;
  crop?: { x: number; y: number; w: number; h: number } | undefined;
}

/**
 * The shot's window of the source at its planned frame rate and size, coded at CEILING_QP, vs
 * the same window kept losslessly: both come out of one decode, so their first frames are the
 * same source frame, and SSIM is then measured as verify measures it (same grid, size, crop).
 */
export async function pictureCeiling(source: string, w: PictureWindow, work: string, signal?: AbortSignal): Promise<number> {
  const ref = join(work, `ceil-ref-${w.start.toFixed(3)}.mkv`);
  const out = join(work, `ceil-out-${w.start.toFixed(3)}.mkv`);
  const eps = 1e-6;
  // the same slot rule as the encode's select: a frame when it enters a new 1/fps slot
  const select = `isnan(prev_selected_t)+gt(floor(t*${w.fps}+${eps}),floor(prev_selected_t*${w.fps}+${eps}))`;
  const graph = `[0:v:0]fps=${w.baseFps},split[a][b];[a]format=yuv420p[ref];`
    + `[b]select='${select}',scale=${w.width}:${w.height}:flags=lanczos,format=yuv420p[out]`;
  await run('ffmpeg', ['-nostdin', '-hide_banner', '-v', 'error', '-y',
    '-ss', w.start.toFixed(6), '-t', (w.duration + 0.5).toFixed(6), '-i', source,
    '-filter_complex', graph,
    '-map', '[ref]', '-an', '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', ref,
    '-map', '[out]', '-an', '-fps_mode', 'vfr', '-c:v', 'libx264', '-preset', 'veryfast', '-qp', String(CEILING_QP), '-bf', '0', out,
  ], { signal });
  const m = await ssimWindow(ref, out, { start: 0, duration: w.duration, width: w.width, height: w.height, fps: w.baseFps, crop: w.crop, signal });
  return m.all;
}

export interface TextFrame {
  at: number;
  /** output size of the lowest rendition */
  width: number;
  height: number;
  /** size OCR reads at, as verify does */
  ocrWidth: number;
  ocrHeight: number;
  lang: OcrLang;
  /** what tesseract read on the source frame */
  sourceText: string;
}

/**
 * The source frame scaled to the rendition's size (as the encode scales it, 4:2:0) and back
 * to OCR size, losslessly: the words a perfect encoder at that size could still show.
 */
export async function textCeiling(source: string, f: TextFrame, work: string, signal?: AbortSignal): Promise<number> {
  const small = join(work, `ceil-${f.at.toFixed(3)}.png`);
  const back = join(work, `ceil-ocr-${f.at.toFixed(3)}.png`);
  await run('ffmpeg', ['-nostdin', '-hide_banner', '-v', 'error', '-y', '-ss', Math.max(0, f.at).toFixed(6), '-i', source,
    '-map', '0:v:0', '-frames:v', '1', '-vf', `scale=${f.width}:${f.height}:flags=lanczos,format=yuv420p`, small], { signal });
  await grabFrame(small, 0, back, { width: f.ocrWidth, height: f.ocrHeight, signal });
  return wordRecall(f.sourceText, await ocrFrame(back, f.lang, signal));
}
