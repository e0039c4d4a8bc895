import { access, constants, stat } from 'node:fs/promises';
import { run } from '../media/run.js';
import { YachayError, isYachayError } from '../errors.js';
import { sniffFile } from '../media/sniff.js';

/** What the rest of the pipeline needs to know about an input, already sanity-checked. */
export interface MediaInfo {
  path: string;
  duration: number;
  sizeBytes: number;
  video?: {
    codec: string;
    /** coded size */
    width: number;
    height: number;
    /** size as shown, after the rotation a phone recorded in the metadata */
    displayWidth: number;
    displayHeight: number;
    rotation: number;
    fps: number;
    variableFrameRate: boolean;
  } | undefined;
  audio?: { codec: string; sampleRate: number; channels: number } | undefined;
}

interface FfprobeStream {
  codec_type?: string; codec_name?: string; width?: number; height?: number;
  r_frame_rate?: string; avg_frame_rate?: string; sample_rate?: string; channels?: number;
  disposition?: { attached_pic?: number };
  tags?: { rotate?: string };
  side_data_list?: Array<{ side_data_type?: string; rotation?: number }>;
}
interface FfprobeOut { format?: { duration?: string; format_name?: string }; streams?: FfprobeStream[] }

/** 8K is the largest a phone or camera records today; beyond it decoding would exhaust a Pi. */
export const MAX_PIXELS = 8192 * 4352;

function rate(s: string | undefined): number {
  if (!s) return 0;
  const [n, d] = s.split('/').map(Number);
  return d ? (n ?? 0) / d : Number(n) || 0;
}

export async function probe(path: string, signal?: AbortSignal): Promise<MediaInfo> {
  let size: number;
  try {
    const st = await stat(path);
    if (st.isDirectory()) {
      throw new YachayError('YCH_ERR_INPUT_NOT_MEDIA', `${path} is a folder, not a recording`);
    }
    await access(path, constants.R_OK);
    size = st.size;
  } catch (err) {
    if (isYachayError(err)) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be read (${code})`;
    throw new YachayError('YCH_ERR_INPUT_MISSING', `input ${path} ${why}`, { cause: err });
  }
  if (size === 0) throw new YachayError('YCH_ERR_INPUT_EMPTY', `input ${path} is an empty file (0 bytes)`);

  let out: FfprobeOut;
  try {
    const res = await run('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', path], { signal });
    out = JSON.parse(res.stdout) as FfprobeOut;
  } catch (err) {
    if (isYachayError(err) && err.code !== 'YCH_ERR_FFMPEG_FAILED') throw err;
    const msg = String((err as Error).message);
    // ffprobe says "moov atom not found" both for a cut-off phone video and for a text file named
    // .mp4: the first bytes tell a damaged recording from something that never was one
    if (await sniffFile(path) !== undefined) {
      throw new YachayError('YCH_ERR_INPUT_CORRUPT', `input ${path} is damaged or truncated (${msg.replace(/^ffprobe failed \([^)]*\): /, '')})`, { cause: err });
    }
    throw new YachayError('YCH_ERR_INPUT_NOT_MEDIA', `input ${path} is not a video or audio file ffmpeg can read`, { cause: err });
  }

  const fmt = out.format?.format_name ?? '';
  // ffprobe "reads" plain text as an ANSI-art video and a still image as one frame
  if (/^(tty|image2|png_pipe|jpeg_pipe|webp_pipe|bmp_pipe|gif|svg_pipe)/.test(fmt)) {
    throw new YachayError('YCH_ERR_INPUT_NOT_MEDIA', `input ${path} looks like ${fmt === 'tty' ? 'a text file' : 'a still image'}, not a recording`);
  }
  const streams = out.streams ?? [];
  const v = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  const a = streams.find((s) => s.codec_type === 'audio');
  if (!v && !a) throw new YachayError('YCH_ERR_INPUT_NOT_MEDIA', `input ${path} has neither video nor audio`);
  const duration = Number(out.format?.duration ?? 0);
  if (!Number.isFinite(duration) || duration < 0.5) {
    throw new YachayError('YCH_ERR_INPUT_EMPTY', `input ${path} lasts ${Number.isFinite(duration) ? duration.toFixed(2) : 0} s: too short to be a lesson (needs ≥ 0.5 s)`);
  }

  const info: MediaInfo = { path, duration, sizeBytes: size };
  if (v) {
    const width = v.width ?? 0;
    const height = v.height ?? 0;
    if (width < 16 || height < 16) throw new YachayError('YCH_ERR_INPUT_CORRUPT', `input ${path}: video frames are ${width}x${height}, too small or unreadable`);
    if (width * height > MAX_PIXELS) {
      throw new YachayError('YCH_ERR_INPUT_TOO_LARGE', `input ${path}: video is ${width}x${height}, larger than 8K`);
    }
    const sideRot = v.side_data_list?.find((d) => d.side_data_type === 'Display Matrix')?.rotation;
    const rotation = ((Math.round(Number(sideRot ?? v.tags?.rotate ?? 0)) % 360) + 360) % 360;
    const swap = rotation === 90 || rotation === 270;
    const r = rate(v.r_frame_rate);
    const avg = rate(v.avg_frame_rate);
    info.video = {
      codec: v.codec_name ?? 'unknown', width, height,
      displayWidth: swap ? height : width, displayHeight: swap ? width : height, rotation,
      fps: avg > 0 && avg < 240 ? avg : r > 0 && r < 240 ? r : 30,
      variableFrameRate: r > 0 && avg > 0 && Math.abs(r - avg) / r > 0.02,
    };
  }
  if (a) {
    info.audio = { codec: a.codec_name ?? 'unknown', sampleRate: Number(a.sample_rate ?? 0), channels: a.channels ?? 1 };
  }
  return info;
}
