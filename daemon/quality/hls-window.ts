import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { YachayError } from '../errors.js';

/**
 * A few seconds of one of our own HLS renditions as a small file ffmpeg can read directly.
 * ffmpeg 5.1 cannot seek in fMP4 HLS (see audio.ts), so measuring one shot 50 minutes into a
 * lecture meant decoding 50 minutes of video first: a 60-minute lesson's checks spent longer
 * decoding than encoding. An fMP4 init section followed by whole media segments is itself a
 * valid fragmented MP4, and its fragments keep their decode times (tfdt), so the frames read
 * from the window carry the same timestamps as when the whole playlist is read.
 */
export interface MediaPlaylist {
  init: string;
  /** each segment's file and its start, seconds after the first segment's start */
  segments: Array<{ file: string; start: number; duration: number }>;
}

/** A media playlist with an init section (EXT-X-MAP), as package.ts writes them; undefined otherwise. */
export async function readMediaPlaylist(path: string): Promise<MediaPlaylist | undefined> {
  const text = await readFile(path, 'utf8');
  const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(text)?.[1];
  if (!init || !safeName(init)) return undefined;
  const segments: MediaPlaylist['segments'] = [];
  let pending: number | undefined;
  let at = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const inf = /^#EXTINF:([\d.]+)/.exec(line);
    if (inf) { pending = Number(inf[1]); continue; }
    if (!line || line.startsWith('#')) continue;
    // only plain file names beside the playlist: a window never reaches outside the package
    if (pending === undefined || !safeName(line)) return undefined;
    segments.push({ file: line, start: at, duration: pending });
    at += pending;
    pending = undefined;
  }
  return segments.length ? { init, segments } : undefined;
}

function safeName(name: string): boolean {
  return /^[\w.-]+$/.test(name) && !name.startsWith('.');
}

/**
 * Writes init + the segments that cover [from, to] (seconds after the first segment's start)
 * to a temp file, with one more segment on each side: EXTINF sums drift from the true
 * fragment times by a frame or two, and a measure decoding a margin before its window needs
 * the frames already showing there. Returns undefined when `playlist` is not one of ours.
 */
export async function hlsWindow(playlist: string, from: number, to: number): Promise<{ path: string; dispose: () => Promise<void> } | undefined> {
  const pl = await readMediaPlaylist(playlist);
  if (!pl) return undefined;
  const segs = pl.segments;
  let first = segs.findIndex((s) => s.start + s.duration > from);
  if (first < 0) first = segs.length - 1;
  let last = first;
  while (last + 1 < segs.length && segs[last + 1]!.start <= to) last++;
  first = Math.max(0, first - 1);
  last = Math.min(segs.length - 1, last + 1);
  const dir = await mkdtemp(join(tmpdir(), 'yachay-window-'));
  const path = join(dir, 'window.mp4');
  const dispose = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    const out = await open(path, 'w');
    try {
      const base = dirname(playlist);
      for (const file of [pl.init, ...segs.slice(first, last + 1).map((s) => s.file)]) {
        for await (const chunk of createReadStream(join(base, file))) await out.write(chunk as Buffer);
      }
    } finally {
      await out.close();
    }
  } catch (err) {
    await dispose();
    throw new YachayError('YCH_ERR_IO', `reading ${playlist} for a quality check failed: ${(err as Error).message}`, { cause: err });
  }
  return { path, dispose };
}
