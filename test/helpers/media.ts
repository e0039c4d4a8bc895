import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Short generated clips for tests: real ffmpeg, a few seconds, in the test's own folder. */
export interface ClipOptions {
  seconds?: number;
  width?: number;
  height?: number;
  fps?: number;
  video?: boolean;
  audio?: boolean;
  /** write a display-matrix rotation like a phone held upright */
  rotate?: 0 | 90 | 180 | 270;
  /** drop frames irregularly to make a variable-frame-rate file */
  vfr?: boolean;
  ext?: string;
}

export function ffmpeg(args: string[]): void {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-y', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed: ${r.stderr}`);
}

export function makeClip(dir: string, name: string, o: ClipOptions = {}): string {
  const s = o.seconds ?? 3; const w = o.width ?? 640; const h = o.height ?? 360; const fps = o.fps ?? 30;
  const out = join(dir, `${name}.${o.ext ?? 'mp4'}`);
  const args: string[] = [];
  if (o.video !== false) args.push('-f', 'lavfi', '-i', `testsrc2=s=${w}x${h}:r=${fps}:d=${s}`);
  if (o.audio !== false) args.push('-f', 'lavfi', '-i', `sine=f=440:r=48000:d=${s}`);
  if (o.video !== false) {
    if (o.vfr) args.push('-vf', "select='not(eq(mod(n,7),3))*not(eq(mod(n,11),5))'", '-fps_mode', 'vfr');
    args.push('-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p');
  }
  if (o.audio !== false) args.push('-c:a', 'aac', '-b:a', '64k');
  args.push('-shortest', out);
  ffmpeg(args);
  if (o.rotate) setRotation(out, o.rotate);
  return out;
}

/**
 * Phones store "hold upright" as a display matrix in the video track header (tkhd). ffmpeg 5.1
 * cannot write one on request, so the test writes it the way a phone does.
 */
export function setRotation(mp4: string, degrees: 90 | 180 | 270): void {
  const buf = readFileSync(mp4);
  const at = buf.indexOf('tkhd'); // the video track is muxed first
  if (at < 0) throw new Error(`${mp4}: no tkhd box`);
  const version = buf[at + 4]!;
  const matrixAt = at + 4 + 4 + (version === 1 ? 32 : 20) + 8 + 8;
  const one = 0x10000; const minus = -0x10000;
  const [a, b, c, d] = degrees === 90 ? [0, one, minus, 0] : degrees === 180 ? [minus, 0, 0, minus] : [0, minus, one, 0];
  const m = [a, b, 0, c, d, 0, 0, 0, 0x40000000];
  m.forEach((v, i) => buf.writeInt32BE(v, matrixAt + 4 * i));
  writeFileSync(mp4, buf);
}
