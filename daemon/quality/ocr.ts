import { writeFile } from 'node:fs/promises';
import { deflateSync } from 'node:zlib';
import { run, ToolFailure } from '../media/run.js';
import { YachayError } from '../errors.js';
import { isPlaylist, playlistInputArgs } from './audio.js';
import { hlsWindow } from './hls-window.js';
import { videoStart } from './ssim.js';


/**
 * Slide legibility check: read the same frame of source and candidate with tesseract and
 * count how many of the words read on the source are still read on the candidate. Text
 * that a student cannot read on a phone is the first thing a too-small encode loses.
 */

export type OcrLang = 'spa' | 'eng' | 'spa+eng';

/** Frame at `timeSec` scaled (bicubic) to width x height, grey, white-on-dark turned dark-on-white. */
export async function grabFrame(input: string, timeSec: number, outPng: string,
  opts: { width: number; height: number; signal?: AbortSignal }): Promise<void> {
  const { width, height, signal } = opts;
  const filter = ['-map', '0:v:0', '-frames:v', '1', '-vf', `scale=${width}:${height}:flags=bicubic,format=gray`,
    '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'];
  let args: string[];
  let window: Awaited<ReturnType<typeof hlsWindow>>;
  if (isPlaylist(input)) {
    // fMP4 HLS cannot seek in ffmpeg 5.1 (see audio.ts): one of our renditions is read from the
    // segments around the frame; its timestamps are the playlist's, so the frame is picked at
    // the same time counted from the playlist's start (what ffmpeg does without -copyts)
    // ffmpeg counts -ss from the playlist's container start when timestamps are not copied
    const zero = (await videoStart(input, signal)).container;
    window = await hlsWindow(input, timeSec, timeSec);
    const at = ['-ss', (Math.max(0, timeSec) + (window ? zero : 0)).toFixed(6)];
    args = window
      ? ['-nostdin', '-hide_banner', '-loglevel', 'error', '-copyts', '-i', window.path, ...at, ...filter]
      : ['-nostdin', '-hide_banner', '-loglevel', 'error', ...playlistInputArgs(input), '-i', input, ...at, ...filter];
  } else {
    // -ss before -i seeks fast and decodes only from the previous keyframe
    args = ['-nostdin', '-hide_banner', '-loglevel', 'error', '-ss', Math.max(0, timeSec).toFixed(6), '-i', input, ...filter];
  }
  const chunks: Buffer[] = [];
  try {
    await run('ffmpeg', args, { signal, onStdout: (c) => { chunks.push(c); } });
  } finally {
    await window?.dispose();
  }
  const gray = Buffer.concat(chunks);
  if (gray.length < width * height) {
    throw new YachayError('YCH_ERR_FFMPEG_FAILED', `no frame at ${timeSec}s in ${input} (past the end?)`);
  }
  const px = gray.subarray(0, width * height);
  // tesseract's binarisation is tuned for dark text on a light page; light-on-dark slide
  // themes read far worse unless inverted
  let sum = 0;
  for (let i = 0; i < px.length; i++) sum += px[i]!;
  if (sum / px.length < 128) for (let i = 0; i < px.length; i++) px[i] = 255 - px[i]!;
  await writeFile(outPng, encodeGrayPng(px, width, height));
}

// A minimal 8-bit greyscale PNG writer: saves a second ffmpeg run per frame.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

export function encodeGrayPng(px: Uint8Array, width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // colour type: greyscale
  const raw = Buffer.alloc((width + 1) * height); // each row: filter byte 0 + pixels
  for (let y = 0; y < height; y++) raw.set(px.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 6 })), chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Text tesseract reads on the image (page segmentation 3: automatic layout, as on slides). */
export async function ocrFrame(pngPath: string, lang: OcrLang, signal?: AbortSignal): Promise<string> {
  try {
    // one OpenMP thread: tesseract's threading is slower than serial on 2-4 small cores,
    // and the appliance is encoding at the same time
    const { stdout } = await run('tesseract', [pngPath, 'stdout', '-l', lang, '--psm', '3'], {
      signal, env: { OMP_THREAD_LIMIT: '1' },
    });
    return stdout;
  } catch (err) {
    if (err instanceof ToolFailure && /Failed loading language|Error opening data file/i.test(err.stderr)) {
      throw new YachayError('YCH_ERR_OCR_MISSING', `tesseract has no '${lang}' language data`, { cause: err });
    }
    throw err;
  }
}

/**
 * Words for scoring: NFKC (ligatures, full-width and composed accents unified), lower case,
 * runs of letters and runs of digits. Punctuation and operators are dropped since OCR of
 * "x²+1" is unreliable on any image; accents are kept because "año" and "ano" differ.
 */
export function words(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(/[\p{L}\p{M}]+|\p{Nd}+/gu) ?? [];
}

/** Number of scoring words in an OCR text (how much there was to read). */
export function wordCount(text: string): number {
  return words(text).length;
}

/** 1 - word edit distance / reference words, clamped at 0 (empty reference: 1 iff hypothesis empty). */
export function wordAccuracy(reference: string, hypothesis: string): number {
  const ref = words(reference);
  const hyp = words(hypothesis);
  if (ref.length === 0) return hyp.length === 0 ? 1 : 0;
  let prev = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const cur = [i];
    for (let j = 1; j <= hyp.length; j++) {
      const sub = prev[j - 1]! + (ref[i - 1] === hyp[j - 1] ? 0 : 1);
      cur.push(Math.min(sub, prev[j]! + 1, cur[j - 1]! + 1));
    }
    prev = cur;
  }
  return Math.max(0, 1 - prev[hyp.length]! / ref.length);
}

/**
 * Share of the source's words (with their counts) read anywhere on the candidate. Legibility
 * does not depend on the order tesseract happens to read a page in: on a documentation page
 * with a menu bar and columns it joined blocks differently on two nearly identical frames,
 * and the ordered measure (wordAccuracy) fell to 0.45 where 0.97 of the words were read.
 */
export function wordRecall(reference: string, hypothesis: string): number {
  const ref = words(reference);
  if (ref.length === 0) return 1;
  const have = new Map<string, number>();
  for (const w of words(hypothesis)) have.set(w, (have.get(w) ?? 0) + 1);
  let found = 0;
  for (const w of ref) {
    const n = have.get(w) ?? 0;
    if (n > 0) { found++; have.set(w, n - 1); }
  }
  return found / ref.length;
}

/**
 * How much of what OCR reads on the source is still read on the candidate: the source's
 * OCR is the reference (it already excludes what tesseract cannot read even at full
 * quality). A frame with no readable text on the source has nothing to lose: 1.
 */
export function ocrRatio(sourceText: string, candidateText: string): number {
  if (words(sourceText).length === 0) return 1;
  return wordAccuracy(sourceText, candidateText);
}
