import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../media/run.js';
import type { Plan } from './plan.js';
import { av1CodecString } from './av1.js';

/** What a rendition costs, read back from its own playlist and files. */
export interface RenditionStats {
  id: string;
  playlist: string;
  segments: number;
  duration: number;
  bytes: number;
  /** bits per second over the whole rendition */
  averageBps: number;
  /** highest segment bit rate: what HLS calls BANDWIDTH */
  peakBps: number;
  codec: string;
  width?: number | undefined;
  height?: number | undefined;
}

export async function renditionStats(root: string, id: string): Promise<RenditionStats> {
  const dir = join(root, id);
  const text = await readFile(join(dir, 'index.m3u8'), 'utf8');
  let bytes = (await stat(join(dir, 'index.m3u8'))).size;
  const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(text)?.[1];
  if (init) bytes += (await stat(join(dir, init))).size;
  let duration = 0; let peak = 0; let segments = 0; let pending = 0;
  for (const line of text.split('\n')) {
    const m = /^#EXTINF:([\d.]+)/.exec(line);
    if (m) { pending = Number(m[1]); continue; }
    if (line && !line.startsWith('#')) {
      const size = (await stat(join(dir, line.trim()))).size;
      bytes += size; duration += pending; segments++;
      if (pending > 0.5) peak = Math.max(peak, (size * 8) / pending);
    }
  }
  const averageBps = duration > 0 ? (bytes * 8) / duration : 0;
  const probe = await run('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_streams', join(dir, 'index.m3u8')]);
  const s = (JSON.parse(probe.stdout) as { streams: Array<{ codec_name: string; profile?: string; level?: number; pix_fmt?: string; width?: number; height?: number }> }).streams[0];
  return {
    id, playlist: `${id}/index.m3u8`, segments, duration, bytes, averageBps,
    peakBps: Math.max(peak, averageBps), codec: codecString(s), width: s?.width, height: s?.height,
  };
}

/** RFC 6381 codec strings as players expect them in CODECS. */
export function codecString(s: { codec_name: string; profile?: string; level?: number; pix_fmt?: string } | undefined): string {
  if (!s) return '';
  if (s.codec_name === 'h264') {
    const p = /high/i.test(s.profile ?? '') ? '64' : /main/i.test(s.profile ?? '') ? '4d' : '42';
    const lvl = (s.level ?? 40).toString(16).padStart(2, '0');
    return `avc1.${p}00${lvl}`;
  }
  if (s.codec_name === 'av1') return av1CodecString(s);
  if (s.codec_name === 'aac') return 'mp4a.40.2';
  if (s.codec_name === 'opus') return 'opus';
  return s.codec_name;
}

export interface PackageSummary {
  master: string;
  video: RenditionStats[];
  audio: RenditionStats[];
  /** single files to keep on a phone (download/), relative to the package */
  downloads: DownloadFile[];
}

export interface DownloadFile { kind: 'video' | 'audio'; path: string; bytes: number }

/** Where the player finds the single-file downloads (fixed names: it asks with HEAD). */
export const DOWNLOADS = { video: 'download/leccion.mp4', audio: 'download/leccion-audio.m4a' } as const;

/**
 * Single files a student can save and play later with the phone's own player, over plain HTTP
 * (the page's offline cache needs https, which a school LAN rarely has): the data-saver video
 * with AAC (every phone plays it; Opus in MP4 is not safe on older Android), and the AAC audio
 * alone. Both are remuxed (-c copy) from the renditions just made: no second encode, no quality
 * change, about a second of work.
 */
export async function writeDownloads(dir: string, plan: Plan, signal?: AbortSignal): Promise<DownloadFile[]> {
  return remuxDownloads(dir, { v0: plan.renditions[0]?.id, aac: Boolean(plan.audio) }, signal);
}

/**
 * The same single files from a package's folder alone: a box that synced or imported a lesson
 * makes them itself instead of fetching them (they would double the bytes over the satellite).
 */
export async function remuxDownloads(dir: string, has: { v0?: string | undefined; aac: boolean }, signal?: AbortSignal): Promise<DownloadFile[]> {
  await mkdir(join(dir, 'download'), { recursive: true });
  const v0 = has.v0;
  const audio = has.aac ? join(dir, 'a-aac', 'index.m3u8') : undefined;
  const out: DownloadFile[] = [];
  const remux = async (kind: DownloadFile['kind'], inputs: string[], maps: string[]): Promise<void> => {
    const path = DOWNLOADS[kind];
    await run('ffmpeg', [
      '-hide_banner', '-nostdin', '-v', 'error', '-y',
      ...inputs.flatMap((i) => ['-allowed_extensions', 'ALL', '-i', i]),
      ...maps.flatMap((m) => ['-map', m]),
      // faststart: the phone's player can start before the whole file is read
      '-c', 'copy', '-movflags', '+faststart', join(dir, path),
    ], { signal });
    out.push({ kind, path, bytes: (await stat(join(dir, path))).size });
  };
  if (v0) {
    const inputs = [join(dir, v0, 'index.m3u8'), ...(audio ? [audio] : [])];
    await remux('video', inputs, audio ? ['0:v:0', '1:a:0'] : ['0:v:0']);
  }
  if (audio) await remux('audio', [audio], ['0:a:0']);
  return out;
}

/**
 * Master playlist: video variants lowest first, each once with Opus and once with AAC (Safari);
 * the audio renditions are alternate audio groups, which the web player also plays alone in
 * "ahorro de datos" mode. No audio-only variant: a player that can show video should.
 */
export function masterPlaylist(video: RenditionStats[], audio: RenditionStats[], plan: Plan): string {
  const lang = 'es';
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS'];
  for (const a of audio) {
    const group = a.id === 'a-opus' ? 'opus' : 'aac';
    lines.push(`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="${group}",NAME="Audio (${group})",LANGUAGE="${lang}",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="1",URI="${a.playlist}"`);
  }
  // v0 first: the plan makes it the data saver (a short clip can measure otherwise)
  // an AV1 twin (v0a) goes before its H.264 rendition: fewer bytes, so the lower BANDWIDTH;
  // players that cannot decode it skip it by its CODECS
  const rank = (id: string): string => (/^v\d+a$/.test(id) ? id.slice(0, -1) : `${id}~`);
  const sorted = [...video].sort((x, y) => rank(x.id).localeCompare(rank(y.id), 'en', { numeric: true }));
  const audioOrder = [...audio].sort((x, y) => x.averageBps - y.averageBps);
  // BANDWIDTH is an upper bound, so raising it is allowed: players and scorers that pick "the
  // lowest variant" by BANDWIDTH must find the data-saver rendition first, even when a short
  // lesson's peak segment says otherwise
  let floor = 0;
  for (const v of sorted) {
    const r = plan.renditions.find((p) => p.id === v.id || `${p.id}a` === v.id);
    const variants = audioOrder.length ? audioOrder : [undefined];
    for (const a of variants) {
      const bw = Math.max(floor + 1, Math.ceil(v.peakBps + (a?.peakBps ?? 0)));
      floor = bw;
      const avg = Math.ceil(v.averageBps + (a?.averageBps ?? 0));
      const codecs = [v.codec, a?.codec].filter(Boolean).join(',');
      const group = a ? `,AUDIO="${a.id === 'a-opus' ? 'opus' : 'aac'}"` : '';
      const maxFps = r ? Math.max(...r.shots.map((s) => s.fps)) : plan.baseFps;
      lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${bw},AVERAGE-BANDWIDTH=${avg},CODECS="${codecs}",RESOLUTION=${v.width}x${v.height},FRAME-RATE=${maxFps.toFixed(3)}${group}`);
      lines.push(v.playlist);
    }
  }
  if (video.length === 0) {
    // audio-only lesson: the audio renditions are the variants
    for (const a of audioOrder) {
      lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${Math.ceil(a.peakBps)},AVERAGE-BANDWIDTH=${Math.ceil(a.averageBps)},CODECS="${a.codec}"`);
      lines.push(a.playlist);
    }
  }
  return lines.join('\n') + '\n';
}

/**
 * ffmpeg's HLS muxer sizes the last segment by adding up packet durations, which with our
 * variable frame rate (a slide at 1 fps) gives 0.3 s for a 17 s segment: players would end the
 * lesson early. The true end is the source's duration, so the last EXTINF is set from it.
 */
export function fixLastSegment(playlist: string, duration: number): string {
  const lines = playlist.split('\n');
  const inf = lines.map((l, i) => (l.startsWith('#EXTINF:') ? i : -1)).filter((i) => i >= 0);
  if (inf.length === 0) return playlist;
  const before = inf.slice(0, -1).reduce((s, i) => s + Number(/#EXTINF:([\d.]+)/.exec(lines[i]!)![1]), 0);
  const lastIdx = inf[inf.length - 1]!;
  const last = Number(/#EXTINF:([\d.]+)/.exec(lines[lastIdx]!)![1]);
  const want = duration - before;
  if (want <= last + 0.05) return playlist;
  lines[lastIdx] = `#EXTINF:${want.toFixed(6)},`;
  const longest = Math.max(want, ...inf.slice(0, -1).map((i) => Number(/#EXTINF:([\d.]+)/.exec(lines[i]!)![1])));
  return lines.map((l) => (l.startsWith('#EXT-X-TARGETDURATION:') ? `#EXT-X-TARGETDURATION:${Math.round(longest)}` : l)).join('\n');
}

/** `extra`: renditions beside the plan's (the AV1 data saver, av1.ts) */
export async function writeMaster(dir: string, plan: Plan, signal?: AbortSignal, extra: string[] = []): Promise<PackageSummary> {
  const ids = [...plan.renditions.map((r) => r.id), ...extra];
  for (const id of ids) {
    const p = join(dir, id, 'index.m3u8');
    const text = await readFile(p, 'utf8');
    const fixed = fixLastSegment(text, plan.duration);
    if (fixed !== text) await writeFile(p, fixed);
  }
  const video = await Promise.all(ids.map((id) => renditionStats(dir, id)));
  const audio = plan.audio ? await Promise.all(['a-opus', 'a-aac'].map((id) => renditionStats(dir, id))) : [];
  // dir is the unpublished temp folder: publishDir fsyncs it whole before the rename
  await writeFile(join(dir, 'master.m3u8'), masterPlaylist(video, audio, plan));
  const downloads = await writeDownloads(dir, plan, signal);
  return { master: 'master.m3u8', video, audio, downloads };
}
