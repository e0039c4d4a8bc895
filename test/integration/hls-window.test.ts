import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ffmpeg, makeClip } from '../helpers/media.js';
import { hlsWindow, readMediaPlaylist } from '../../daemon/quality/hls-window.js';
import { ssimWindow } from '../../daemon/quality/ssim.js';
import { grabFrame } from '../../daemon/quality/ocr.js';

// Quality checks read a few seconds of a rendition from its segments instead of the whole
// playlist from the top; they must see exactly the frames the whole playlist shows there.
t.test('a window of segments measures what the whole rendition measures', async (t) => {
  const dir = t.testdir();
  const src = makeClip(dir, 'src', { seconds: 20, fps: 30, audio: false });
  ffmpeg(['-i', src, '-vf', 'fps=10', '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '30', '-g', '20', '-bf', '3',
    '-f', 'hls', '-hls_time', '2', '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4', '-hls_fmp4_init_filename', 'init.mp4',
    '-hls_segment_filename', join(dir, 'seg_%03d.m4s'), join(dir, 'index.m3u8')]);
  const playlist = join(dir, 'index.m3u8');
  const pl = await readMediaPlaylist(playlist);
  t.ok(pl && pl.segments.length >= 8, `${pl?.segments.length} segments`);
  // the same rendition as one plain file: init + every segment, read with seeking
  const whole = join(dir, 'whole.mp4');
  writeFileSync(whole, Buffer.concat([pl!.init, ...pl!.segments.map((s) => s.file)].map((f) => readFileSync(join(dir, f)))));
  for (const at of [1.05, 9.3, 17.2]) {
    const o = { start: at, duration: 1.5, width: 320, height: 180, fps: 30 };
    const [a, b] = [await ssimWindow(src, playlist, o), await ssimWindow(src, whole, o)];
    t.equal(a.all, b.all, `SSIM at ${at}s: window ${a.all}, whole file ${b.all}`);
    await grabFrame(playlist, at, join(dir, 'a.png'), { width: 160, height: 90 });
    await grabFrame(whole, at, join(dir, 'b.png'), { width: 160, height: 90 });
    t.same(readFileSync(join(dir, 'a.png')), readFileSync(join(dir, 'b.png')), `the frame at ${at}s is the same`);
  }
  const w = await hlsWindow(playlist, 9, 10);
  t.ok(w, 'a window was made');
  const size = readFileSync(w!.path).length;
  t.ok(size < readFileSync(whole).length / 2, `the window reads ${size} bytes, not the whole rendition`);
  await w!.dispose();
  writeFileSync(join(dir, 'evil.m3u8'), '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:2,\n../../etc/passwd\n#EXT-X-ENDLIST\n');
  t.equal(await hlsWindow(join(dir, 'evil.m3u8'), 0, 1), undefined, 'a segment outside the folder is never read');
});
