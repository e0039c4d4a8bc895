import { createReadStream, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize, sep } from 'node:path';
import { ffmpeg } from './media.js';

/**
 * A real published lesson folder, as the optimizer lays it out (master.m3u8, v0/ video HLS fMP4,
 * a-aac/ audio HLS, report.json), made in about a second with ffmpeg instead of the optimizer.
 * `seed` changes the picture, so two lessons share the audio blobs but not the video ones.
 */
export function makeLessonFolder(dir: string, o: { seconds?: number; seed?: number } = {}): string {
  const s = o.seconds ?? 4;
  mkdirSync(join(dir, 'v0'), { recursive: true });
  mkdirSync(join(dir, 'a-aac'), { recursive: true });
  const hls = (out: string): string[] => ['-f', 'hls', '-hls_time', '1', '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4',
    '-hls_fmp4_init_filename', 'init.mp4', '-hls_segment_filename', join(out, 'seg_%05d.m4s'), join(out, 'index.m3u8')];
  ffmpeg(['-f', 'lavfi', '-i', `testsrc2=s=320x180:r=10:d=${s},hue=h=${(o.seed ?? 0) * 37}`, '-c:v', 'libx264', '-preset', 'ultrafast',
    '-g', '10', '-pix_fmt', 'yuv420p', '-fflags', '+bitexact', '-flags:v', '+bitexact', ...hls(join(dir, 'v0'))]);
  ffmpeg(['-f', 'lavfi', '-i', `sine=f=440:r=48000:d=${s}`, '-c:a', 'aac', '-b:a', '48k', '-fflags', '+bitexact', '-flags:a', '+bitexact', ...hls(join(dir, 'a-aac'))]);
  writeFileSync(join(dir, 'master.m3u8'), '#EXTM3U\n#EXT-X-VERSION:7\n'
    + '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,URI="a-aac/index.m3u8"\n'
    + '#EXT-X-STREAM-INF:BANDWIDTH=300000,CODECS="avc1.42c00d,mp4a.40.2",AUDIO="aac"\nv0/index.m3u8\n');
  writeFileSync(join(dir, 'report.json'), JSON.stringify({ seed: o.seed ?? 0 }));
  return dir;
}

export function renditionsOf(dir: string): Array<{ id: string; bytes: number; kbps: number; playlist: string }> {
  return ['v0', 'a-aac'].map((id) => ({ id, bytes: statSync(join(dir, id, 'index.m3u8')).size, kbps: 100, playlist: `${id}/index.m3u8` }));
}

/**
 * A static origin as nginx would serve it (GET, Range → 206), with a hook that may cut a
 * response after some bytes: a satellite link dropping in the middle of a blob.
 */
export interface TestOrigin { url: string; server: Server; requests: Array<{ path: string; range?: string | undefined }>; cutAfter?: number | undefined; close(): Promise<void> }

export async function serveOrigin(root: string): Promise<TestOrigin> {
  const o: TestOrigin = { url: '', server: undefined as unknown as Server, requests: [], close: async () => {} };
  o.server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const file = normalize(join(root, path));
    o.requests.push({ path, range: req.headers.range });
    if (!file.startsWith(root + sep)) { res.writeHead(403).end(); return; }
    let size: number;
    try { size = statSync(file).size; } catch { res.writeHead(404).end(); return; }
    let start = 0; let end = size - 1; let status = 200;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]); end = m[2] ? Number(m[2]) : end; status = 206;
      if (start >= size) { res.writeHead(416, { 'Content-Range': `bytes */${size}` }).end(); return; }
    }
    res.writeHead(status, { 'Content-Length': end - start + 1, ...(status === 206 ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}) });
    const cut = o.cutAfter;
    if (cut !== undefined) {
      o.cutAfter = undefined;
      let sent = 0;
      const rs = createReadStream(file, { start, end });
      rs.on('data', (chunk) => {
        const c = chunk as Buffer;
        if (sent + c.length >= cut) { res.write(c.subarray(0, cut - sent)); rs.destroy(); res.socket?.destroy(); return; }
        sent += c.length; res.write(c);
      });
      return;
    }
    createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise<void>((r) => o.server.listen(0, '127.0.0.1', r));
  o.url = `http://127.0.0.1:${(o.server.address() as AddressInfo).port}/`;
  o.close = () => new Promise((r) => { o.server.closeAllConnections(); o.server.close(() => r()); });
  return o;
}
