import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { decodePcm, decodePcmToFile } from '../../daemon/quality/audio.js';
import { isYachayError } from '../../daemon/errors.js';
import { stoiInWorker } from '../../daemon/quality/stoi-worker.js';
import { grabFrame, ocrFrame, ocrRatio, wordAccuracy } from '../../daemon/quality/ocr.js';
import { ssimWindow } from '../../daemon/quality/ssim.js';
import { STOI_FS, alignOffset, stoi, stoiOverIntervals } from '../../daemon/quality/stoi.js';

// The quality module against real tools: espeak-ng speech through Opus, ffmpeg-drawn slides
// through tesseract, and lavfi video through ffmpeg's ssim, each with a good and a bad copy.

function tool(bin: string, args: string[]): void {
  const r = spawnSync(bin, bin === 'ffmpeg' ? ['-hide_banner', '-nostdin', '-v', 'error', '-y', ...args] : args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${r.stderr}`);
}

const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
const RATE = 16000;

t.test('speech: decode from wav, webm and HLS, STOI through Opus', async (t) => {
  const dir = t.testdir();
  const wav = join(dir, 'speech.wav');
  tool('espeak-ng', ['-v', 'es-419', '-s', '160', '-w', wav,
    'Hoy vamos a estudiar la fotosíntesis. Las plantas usan la luz del sol para producir azúcar. '
    + 'El oxígeno que respiramos sale de las hojas.']);
  const opus24 = join(dir, 'o24.webm');
  tool('ffmpeg', ['-i', wav, '-c:a', 'libopus', '-b:a', '24k', opus24]);
  // phone-line quality at its worst: 8 kHz, 4 kb/s
  const opus4 = join(dir, 'o4.webm');
  tool('ffmpeg', ['-i', wav, '-ar', '8000', '-c:a', 'libopus', '-b:a', '4k', opus4]);
  const hls = join(dir, 'hls', 'index.m3u8');
  tool('mkdir', ['-p', join(dir, 'hls')]);
  tool('ffmpeg', ['-i', wav, '-c:a', 'libopus', '-b:a', '24k', '-f', 'hls', '-hls_time', '2',
    '-hls_segment_type', 'fmp4', '-hls_playlist_type', 'vod', hls]);

  const clean = await decodePcm(wav, { sampleRate: RATE });
  const secs = clean.length / RATE;
  t.ok(secs > 5, `speech lasts ${secs.toFixed(2)} s`);
  const part = await decodePcm(wav, { sampleRate: RATE, start: 1, duration: 2 });
  t.equal(part.length, 2 * RATE, 'start/duration window');
  t.ok(Math.abs(part[RATE]! - clean[2 * RATE]!) < 1e-3, 'window starts at the right sample');

  const score = async (path: string): Promise<{ value: number; lag: number }> => {
    const deg = await decodePcm(path, { sampleRate: RATE });
    const lag = alignOffset(clean, deg, RATE, 0.5);
    return { value: stoiOverIntervals(clean, deg, RATE, [{ start: 0, end: secs }], lag), lag };
  };
  const s24 = await score(opus24);
  const s4 = await score(opus4);
  const sHls = await score(hls);
  t.ok(s24.value > 0.9, `Opus 24 kb/s: STOI ${s24.value.toFixed(3)} (lag ${s24.lag})`);
  t.ok(s4.value < s24.value - 0.1, `8 kHz / 4 kb/s: STOI ${s4.value.toFixed(3)}, noticeably lower`);
  t.ok(Math.abs(sHls.value - s24.value) < 0.02, `same Opus in fMP4 HLS: STOI ${sHls.value.toFixed(3)} (lag ${sHls.lag})`);
  t.ok(Math.abs(s24.lag) < 0.03 * RATE, 'codec delay stays within 30 ms');
  t.ok(stoi(clean, clean, RATE) > 0.99);

  const partHls = await decodePcm(hls, { sampleRate: RATE, start: 3, duration: 1 });
  t.ok(Math.abs(partHls.length - RATE) <= 2, `HLS window: ${partHls.length} samples`);
});

// verify's speech check: both tracks decoded to 16-bit files, scored in a worker thread window
// by window; it must give what the whole-signal computation gives on the same clips
t.test('speech: STOI in the worker from files matches the whole-signal STOI', async (t) => {
  const dir = t.testdir();
  const wav = join(dir, 'speech.wav');
  tool('espeak-ng', ['-v', 'es-419', '-s', '160', '-w', wav,
    'Hoy vamos a estudiar la fotosíntesis. Las plantas usan la luz del sol para producir azúcar. '
    + 'El oxígeno que respiramos sale de las hojas.']);
  const hls = join(dir, 'hls', 'index.m3u8');
  tool('mkdir', ['-p', join(dir, 'hls')]);
  tool('ffmpeg', ['-i', wav, '-c:a', 'libopus', '-b:a', '12k', '-f', 'hls', '-hls_time', '2',
    '-hls_segment_type', 'fmp4', '-hls_playlist_type', 'vod', hls]);
  const opus4 = join(dir, 'o4.webm');
  tool('ffmpeg', ['-i', wav, '-ar', '8000', '-c:a', 'libopus', '-b:a', '4k', opus4]);

  const clean = await decodePcm(wav, { sampleRate: STOI_FS });
  const secs = clean.length / STOI_FS;
  const speech = [{ start: 0.3, end: secs / 2 }, { start: secs / 2 + 0.2, end: secs - 0.3 }];
  const src = await decodePcmToFile(wav, join(dir, 'src.pcm'), { sampleRate: STOI_FS });
  t.equal(src.samples, clean.length, 'the file holds every sample');
  for (const path of [hls, opus4]) {
    const deg = await decodePcm(path, { sampleRate: STOI_FS });
    const lag = alignOffset(clean, deg, STOI_FS, 0.5);
    const whole = stoiOverIntervals(clean, deg, STOI_FS, speech, lag);
    const out = await decodePcmToFile(path, join(dir, 'out.pcm'), { sampleRate: STOI_FS });
    const r = await stoiInWorker({ clean: src, degraded: out, intervals: speech, maxLagSec: 0.5, windowSec: 2 });
    t.equal(r.lag, lag, `same lag (${lag})`);
    t.ok(Math.abs(r.value - whole) < 0.005, `${path.slice(dir.length + 1)}: worker ${r.value.toFixed(4)}, whole ${whole.toFixed(4)}`);
    t.ok(r.windows > 1, `${r.windows} windows`);
  }

  const ac = new AbortController();
  const running = stoiInWorker({ clean: src, degraded: src, intervals: speech, maxLagSec: 0.5 }, ac.signal);
  ac.abort();
  const stopped = await running.then(() => undefined, (e: unknown) => e);
  t.ok(isYachayError(stopped, 'YCH_ERR_ABORTED'), 'an abort stops the worker');
  await t.rejects(stoiInWorker({ clean: src, degraded: src, intervals: [{ start: 1, end: 1.1 }], maxLagSec: 0.5 }), RangeError,
    'too little speech is the same RangeError as on the main thread');
});

t.test('OCR reads a slide and loses it when downscaled', async (t) => {
  const dir = t.testdir();
  const en = ['Photosynthesis in green plants', 'Light energy becomes chemical energy',
    'Water and carbon dioxide make glucose', 'Oxygen is released from the leaves'];
  const es = ['Fotosíntesis en las plantas', 'La energía de la luz se vuelve química',
    'El agua y el dióxido de carbono dan glucosa', 'Las hojas liberan oxígeno'];
  // title 48 px, bullets 32 px: ordinary slide sizes, 4-6 px tall once shrunk to 160x90
  const slide = (name: string, lines: string[], bg: string, fg: string): string => {
    const out = join(dir, name);
    const draw = lines.map((text, i) => `drawtext=fontfile=${FONT}:text='${text}':fontcolor=${fg}`
      + `:fontsize=${i === 0 ? 48 : 32}:x=90:y=${100 + i * 100}`).join(',');
    tool('ffmpeg', ['-f', 'lavfi', '-i', `color=c=${bg}:s=1280x720:r=30:d=2`, '-vf', draw,
      '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '18', '-pix_fmt', 'yuv420p', out]);
    return out;
  };
  const light = slide('light.mp4', en, 'white', 'black');
  const dark = slide('dark.mp4', es, '0x102040', 'white'); // white on dark: needs the inversion
  const tiny = join(dir, 'tiny.mp4');
  tool('ffmpeg', ['-i', light, '-vf', 'scale=160:90', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '18', tiny]);

  const read = async (input: string, lang: 'eng' | 'spa'): Promise<string> => {
    const png = join(dir, `${input.split('/').pop()}.png`);
    await grabFrame(input, 1, png, { width: 1280, height: 720 });
    return ocrFrame(png, lang);
  };
  const [a, b, c] = await Promise.all([read(light, 'eng'), read(dark, 'spa'), read(tiny, 'eng')]);
  const accLight = wordAccuracy(en.join('\n'), a);
  const accDark = wordAccuracy(es.join('\n'), b);
  const accTiny = wordAccuracy(en.join('\n'), c);
  t.ok(accLight >= 0.9, `1280x720 slide: ${accLight.toFixed(2)} of the words (${JSON.stringify(a.trim())})`);
  t.ok(accDark >= 0.9, `white-on-dark Spanish slide, accents kept: ${accDark.toFixed(2)} (${JSON.stringify(b.trim())})`);
  t.ok(accTiny < 0.5 && accTiny < accLight - 0.4, `160x90 copy: ${accTiny.toFixed(2)} (${JSON.stringify(c.trim())})`);
  t.ok(ocrRatio(a, c) < 0.5, `ratio tiny/source ${ocrRatio(a, c).toFixed(2)}`);
  t.equal(ocrRatio(a, a), 1);

  const png = join(dir, 'light.mp4.png');
  await t.rejects(ocrFrame(png, 'eng', AbortSignal.abort()), { code: 'YCH_ERR_ABORTED' });
  const ac = new AbortController();
  const running = ocrFrame(png, 'spa+eng', ac.signal);
  setTimeout(() => ac.abort(), 30);
  await t.rejects(running, { code: 'YCH_ERR_ABORTED' }, 'abort kills a running tesseract');
  const path = process.env.PATH;
  process.env.PATH = dir; // no tesseract here
  try {
    await t.rejects(ocrFrame(png, 'eng'), { code: 'YCH_ERR_OCR_MISSING' });
  } finally {
    process.env.PATH = path;
  }
});

t.test('SSIM window: identical, degraded, and an HLS copy on its own timeline', async (t) => {
  const dir = t.testdir();
  const src = join(dir, 'src.mp4');
  tool('ffmpeg', ['-f', 'lavfi', '-i', 'testsrc2=s=640x360:r=30:d=6', '-f', 'lavfi', '-i', 'sine=f=440:d=6',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '16', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', src]);
  const bad = join(dir, 'bad.mp4');
  tool('ffmpeg', ['-i', src, '-vf', 'scale=96:54,scale=640:360', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '16', bad]);
  // MPEG-TS HLS starts at 1.4 s with the video after the audio: only right if aligned on video
  tool('mkdir', ['-p', join(dir, 'ts')]);
  const ts = join(dir, 'ts', 'index.m3u8');
  tool('ffmpeg', ['-i', src, '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '16', '-c:a', 'aac',
    '-f', 'hls', '-hls_time', '2', '-hls_playlist_type', 'vod', ts]);
  // 10 fps copy: held frames, compared on the 30 fps grid
  const low = join(dir, 'low.mp4');
  tool('ffmpeg', ['-i', src, '-r', '10', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '16', low]);

  const win = { start: 2.05, duration: 2, width: 640, height: 360, fps: 30 };
  const [same, worse, hls, slow] = await Promise.all([
    ssimWindow(src, src, win), ssimWindow(src, bad, win), ssimWindow(src, ts, win), ssimWindow(src, low, win)]);
  t.ok(same.all > 0.999 && same.y > 0.999, `identical: ${same.all}`);
  t.ok(worse.all < 0.9, `96x54 and back: ${worse.all}`);
  t.ok(hls.all > 0.97, `MPEG-TS HLS copy lines up: ${hls.all}`);
  t.ok(slow.all < hls.all - 0.05, `10 fps copy: judder on moving content is measured: ${slow.all}`);
  await t.rejects(ssimWindow(src, src, { ...win, start: 30 }), { code: 'YCH_ERR_FFMPEG_FAILED' }, 'window past the end');

  // a region of interest is measured in the same pass as the whole frame: a copy whose left
  // half is smeared keeps its right half, and the frame figure is the plain window's
  const half = join(dir, 'half.mp4');
  tool('ffmpeg', ['-i', src, '-filter_complex', '[0:v]split[a][b];[a]scale=96:54,scale=640:360,crop=320:360:0:0[l];[b]crop=320:360:320:0[r];[l][r]hstack',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '16', half]);
  const [region, whole] = await Promise.all([
    ssimWindow(src, half, { ...win, crop: { x: 320, y: 0, w: 320, h: 360 } }), ssimWindow(src, half, win)]);
  t.ok(region.all > 0.99, `intact right half: ${region.all}`);
  t.ok(whole.all < 0.95, `whole frame with a smeared half: ${whole.all}`);
  t.same(region.frame, { all: whole.all, y: whole.y }, 'the frame figure of the region pass is the plain window\'s');
  t.equal(whole.frame, undefined, 'no second figure without a region');
});
