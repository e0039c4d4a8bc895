import { run } from '../optimize/ffmpeg.js';
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
