import { spawnSync } from 'node:child_process';
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
    if (o.rotate) args.push('-display_rotation', String(o.rotate));
  }
  if (o.audio !== false) args.push('-c:a', 'aac', '-b:a', '64k');
  args.push('-shortest', out);
  if (o.rotate) {
    // ffmpeg 5.1 has no -display_rotation: set the legacy rotate tag through the mp4 muxer
    const i = args.indexOf('-display_rotation');
    args.splice(i, 2, '-metadata:s:v:0', `rotate=${o.rotate}`);
  }
  ffmpeg(args);
  return out;
}
