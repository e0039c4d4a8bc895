import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { yachay } from '../helpers/cli.js';

// "Never lose a lesson" (issue 8): a real face filmed by a noisy camera (slow zoom, shake,
// sensor noise) cannot reach the talking-head floor with any encoder. The optimizer measures
// what the recording allows, holds the shot to that, publishes the best attempt and says where
// it is under the floor; exit 0, a warning on stderr.

const FACE = fileURLToPath(new URL('../fixtures/astronaut-256.png', import.meta.url));

t.test('a noisy face under its floor is published, with the miss and its ceiling reported', async (t) => {
  const dir = t.testdir();
  const src = join(dir, 'cara-ruidosa.mp4');
  // 4:3 at 25 fps; the shake is small enough to stay a talking head, the noise is not
  const made = spawnSync('ffmpeg', ['-v', 'error', '-y', '-loop', '1', '-framerate', '25', '-i', FACE,
    '-f', 'lavfi', '-i', 'sine=frequency=220:sample_rate=48000',
    '-filter_complex', "[0:v]scale=1280:960,zoompan=z='1+0.0008*on':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=1:s=720x540:fps=25,"
      + "crop=640:480:x='40+3*sin(n/9)':y='30+2*cos(n/11)',noise=alls=30:allf=t+u,format=yuv420p[v]",
    '-map', '[v]', '-map', '1:a', '-t', '6', '-c:v', 'libx264', '-qp', '10', '-preset', 'veryfast', '-c:a', 'aac', src], { encoding: 'utf8' });
  t.equal(made.status, 0, made.stderr);
  const out = join(dir, 'out');
  // two attempts: the re-encode replaces v0 while the first attempt waits beside it
  const r = await yachay(['optimize', src, '--out', out, '--models', 'face'], { env: { YACHAY_OPTIMIZE_MAX_ATTEMPTS: '2' } });
  t.equal(r.code, 0, r.stderr);
  t.not(r.code, 70, 'not the old YCH_ERR_QUALITY_FLOOR');
  t.ok(existsSync(join(out, 'master.m3u8')), 'published');
  t.ok(existsSync(join(out, 'v0', 'index.m3u8')), 'the lowest rendition is in the package');
  t.match(r.stderr, /aviso \/ warning: publicada.*under the quality floor.*picture 0:00–0:0\d SSIM/);

  const summary = JSON.parse(r.stdout) as { misses: Array<{ kind: string; floor: number; ceiling?: number; value: number }>; attempts: number };
  t.equal(summary.attempts, 2, 'more bits were tried first');
  t.equal(summary.misses.length, 1);
  t.match(summary.misses[0], { kind: 'picture' });

  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as {
    shots: Array<{ cls: string }>;
    misses: Array<{ shot: number; kind: string; start: number; end: number; value: number; floor: number; ceiling: number }>;
    verify: { checks: Array<{ kind: string; shot: number; cls: string; floor: number; nominalFloor?: number; ceiling?: number; ok: boolean }> };
    published: number;
    reencodes: Array<{ attempt: number; segments?: number; of?: number; whole?: string }>;
  };
  t.same(report.shots.map((s) => s.cls), ['talking_head'], 'a talking head (the face model finds the teacher on the shaky, noisy camera)');
  const [miss] = report.misses;
  t.match(miss, { shot: 0, kind: 'picture', start: 0 });
  t.ok(miss!.ceiling < 0.95, `the source allows SSIM ${miss!.ceiling}, under the 0.95 talking-head floor`);
  t.ok(miss!.floor < 0.95 && Math.abs(miss!.floor - (miss!.ceiling - 0.01)) < 1e-9, `held to the ceiling − 0.01: ${miss!.floor}`);
  t.ok(miss!.value < miss!.floor, `measured ${miss!.value}`);
  const head = report.verify.checks.find((c) => c.kind === 'ssim' && c.shot === 0)!;
  t.match(head, { cls: 'talking_head', nominalFloor: 0.95, ok: false }, 'the check keeps the configured floor beside the held one');
  t.ok(report.published >= 1 && report.published <= 2);
  // the one shot fills the clip: every segment of v0 is re-encoded, spliced in place (not a whole re-encode)
  t.match(report.reencodes, [{ attempt: 2, segments: Number }], 'the second attempt re-encoded the segments of the shot');
  t.notOk(report.reencodes.some((x) => x.whole), 'no fallback to a whole re-encode');
  t.same(readdirSync(dir).filter((n) => n.includes('.tmp-')), [], 'no temp or kept-attempt folder left');
});
