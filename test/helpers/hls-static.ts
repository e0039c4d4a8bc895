import { createReadStream, existsSync, statSync } from 'node:fs';
import http from 'node:http';
import { extname, join, normalize } from 'node:path';

// What the Chromium playback tests share: where Chromium and hls.js are, and a bare static
// server for a package folder (plus /hls.js), so a rendition is played as files, without the box.

export const CHROMIUM = '/usr/bin/chromium';
export const HLS_JS = join(process.cwd(), 'node_modules', 'hls.js', 'dist', 'hls.min.js');
/** tap's `skip` for a test that needs both */
export const hlsSkip: false | string = existsSync(CHROMIUM) && existsSync(HLS_JS) ? false : `needs ${CHROMIUM} and ${HLS_JS}`;
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--autoplay-policy=no-user-gesture-required'];

const TYPES: Record<string, string> = {
  '.m3u8': 'application/vnd.apple.mpegurl', '.m4s': 'video/iso.segment', '.mp4': 'video/mp4', '.html': 'text/html', '.js': 'text/javascript',
};

/** Serves `root` (and hls.js at /hls.js) on an ephemeral loopback port. */
export function serveStatic(root: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    const file = path === '/hls.js' ? HLS_JS : join(root, normalize(path).replace(/^(\.\.[/\\])+/, ''));
    if (!existsSync(file) || !statSync(file).isFile()) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}
