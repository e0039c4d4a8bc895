import { readSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { run } from '../media/run.js';
import { YachayError } from '../errors.js';

/**
 * Audio for the quality checks: whatever the container (mp4, wav, webm, or a local HLS
 * playlist of our own output), ffmpeg decodes, downmixes and resamples it and hands us raw
 * mono float32 on a pipe, so no temporary WAV files pile up on the appliance's SD card.
 */
export interface DecodeOptions {
  sampleRate: number;
  /**
   * seconds from where ffmpeg starts the file (for an audio-only decode of our outputs, the
   * first audio sample); codec delays of a few ms remain, which alignOffset measures
   */
  start?: number;
  /** seconds to decode; the rest of the file when omitted */
  duration?: number;
  signal?: AbortSignal;
}

export function isPlaylist(path: string): boolean {
  return /\.m3u8?$/i.test(path);
}

/**
 * Input options that let ffmpeg read a local HLS package: segments are plain files (file
 * protocol only, so a crafted playlist cannot make us fetch URLs) and fMP4 segments may
 * carry extensions (.m4s, .mp4) that the HLS demuxer refuses by default.
 */
export function playlistInputArgs(path: string): string[] {
  return isPlaylist(path) ? ['-protocol_whitelist', 'file,crypto', '-allowed_extensions', 'ALL'] : [];
}

export async function decodePcm(path: string, opts: DecodeOptions): Promise<Float32Array> {
  const { sampleRate, start, duration, signal } = opts;
  if (!(Number.isInteger(sampleRate) && sampleRate >= 1000 && sampleRate <= 384000)) {
    throw new YachayError('YCH_ERR_USAGE', `decodePcm: sample rate ${sampleRate} is not a sensible integer rate`);
  }
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', ...playlistInputArgs(path)];
  const window: string[] = [];
  if (start !== undefined && start > 0) window.push('-ss', start.toFixed(6));
  if (duration !== undefined) window.push('-t', duration.toFixed(6));
  // Before -i, -ss seeks in the demuxer (fast, still sample-accurate for audio). ffmpeg 5.1
  // cannot seek in HLS with fMP4 segments (after the seek it parses media without the init
  // section: "Invalid NAL unit size"), so for playlists the window is cut after decoding.
  if (!isPlaylist(path)) args.push(...window);
  args.push('-i', path);
  if (isPlaylist(path)) args.push(...window);
  args.push('-map', '0:a:0', '-vn', '-sn', '-dn',
    // soxr: the same high-quality resampler the independent referee uses, so scores compare
    '-af', `aresample=${sampleRate}:resampler=soxr`,
    '-ac', '1', '-c:a', 'pcm_f32le', '-f', 'f32le', 'pipe:1');

  const chunks: Buffer[] = [];
  let bytes = 0;
  await run('ffmpeg', args, {
    signal,
    onStdout: (chunk) => { chunks.push(chunk); bytes += chunk.length; },
  });
  // copy into a fresh, aligned buffer (pipe chunks are not 4-byte aligned); f32le matches
  // the host byte order on every machine Yachay runs on (x86-64, arm64)
  const n = Math.floor(bytes / 4);
  const out = new Uint8Array(n * 4);
  let o = 0;
  for (const c of chunks) {
    const take = Math.min(c.length, out.length - o);
    out.set(c.subarray(0, take), o);
    o += take;
  }
  return new Float32Array(out.buffer, 0, n);
}

/**
 * Mono 16-bit PCM on disk, for audio too long to hold: a 60-minute lesson is 230 MB as 16 kHz
 * float32 in memory, 115 MB as this file, and whoever reads it takes one window at a time.
 * 16-bit because that is what the microphone delivered before the camera's AAC, half the
 * SD-card writes of float32, and its quantisation (-96 dBFS) sits far below any room tone.
 */
export interface PcmFile {
  path: string;
  rate: number;
  samples: number;
}

/** ffmpeg decodes, downmixes and resamples straight into a PcmFile at `dest`: no samples pass through Node. */
export async function decodePcmToFile(path: string, dest: string, opts: DecodeOptions): Promise<PcmFile> {
  const { sampleRate, signal } = opts;
  if (!(Number.isInteger(sampleRate) && sampleRate >= 1000 && sampleRate <= 384000)) {
    throw new YachayError('YCH_ERR_USAGE', `decodePcmToFile: sample rate ${sampleRate} is not a sensible integer rate`);
  }
  await run('ffmpeg', ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...playlistInputArgs(path), '-i', path,
    '-map', '0:a:0', '-vn', '-sn', '-dn', '-af', `aresample=${sampleRate}:resampler=soxr`,
    '-ac', '1', ...PCM_FILE_OUTPUT, dest], { signal });
  return { path: dest, rate: sampleRate, samples: await pcmFileSamples(dest) };
}

/** ffmpeg output options that write a PcmFile (after the rate and channel options) */
export const PCM_FILE_OUTPUT = ['-c:a', 'pcm_s16le', '-f', 's16le'];
const BYTES = 2;

export async function pcmFileSamples(path: string): Promise<number> {
  try {
    return Math.floor((await stat(path)).size / BYTES);
  } catch (err) {
    throw new YachayError('YCH_ERR_IO', `reading decoded audio ${path}: ${(err as Error).message}`, { cause: err });
  }
}

// s16le read straight into an Int16Array: the host is little-endian on every machine Yachay runs on
function toFloat(raw: Int16Array, out: Float32Array, at: number, n: number): void {
  for (let i = 0; i < n; i++) out[at + i] = raw[i]! / 32768;
}

/** where [start, start+count) overlaps the file: the rest of the window stays zero (silence) */
function overlap(f: PcmFile, start: number, count: number): { a: number; n: number } {
  const a = Math.max(0, start);
  return { a, n: Math.max(0, Math.min(f.samples, start + count) - a) };
}

/**
 * Samples [start, start+count) as float in [-1, 1), zeros outside the file, so a caller can ask
 * for context before the first sample or past the last as if the recording were padded.
 */
export function readPcmSync(fd: number, f: PcmFile, start: number, count: number): Float32Array {
  const out = new Float32Array(Math.max(0, count));
  const { a, n } = overlap(f, start, count);
  if (n > 0) {
    const raw = new Int16Array(n);
    let got = 0;
    while (got < raw.byteLength) {
      const r = readSync(fd, raw, got, raw.byteLength - got, a * BYTES + got);
      if (r === 0) break;
      got += r;
    }
    toFloat(raw, out, a - start, Math.floor(got / BYTES));
  }
  return out;
}

/** The same reads without blocking the event loop (the VAD reads its lanes on the main thread). */
export async function openPcmFile(f: PcmFile): Promise<{ read(start: number, count: number): Promise<Float32Array>; close(): Promise<void> }> {
  const fh = await open(f.path, 'r');
  return {
    async read(start, count) {
      const out = new Float32Array(Math.max(0, count));
      const { a, n } = overlap(f, start, count);
      if (n > 0) {
        const raw = new Int16Array(n);
        let got = 0;
        while (got < raw.byteLength) {
          const { bytesRead } = await fh.read(raw, got, raw.byteLength - got, a * BYTES + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        toFloat(raw, out, a - start, Math.floor(got / BYTES));
      }
      return out;
    },
    close: () => fh.close(),
  };
}
