import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// issue 10, item 10: after a kill -9 of the box outside systemd, ffmpeg ran on for 30-40 s
const RUNNER = fileURLToPath(new URL('../../daemon/media/run.ts', import.meta.url));

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

t.test('ffmpeg dies with a box killed by SIGKILL', async (t) => {
  const script = `import { run } from ${JSON.stringify(RUNNER)};
    run('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'quiet', '-nostats', '-re', '-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=10', '-f', 'null', '-']).catch(() => {});
    setInterval(() => {}, 1000);`;
  const box = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'ignore' });
  let ffmpegPid: number | undefined;
  for (let i = 0; i < 100 && !ffmpegPid; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const out = spawnSync('pgrep', ['-P', String(box.pid), 'ffmpeg'], { encoding: 'utf8' }).stdout.trim();
    if (out) ffmpegPid = Number(out.split('\n')[0]);
  }
  t.ok(ffmpegPid, `ffmpeg runs under the box (pid ${ffmpegPid})`);
  if (!ffmpegPid) { box.kill('SIGKILL'); return; }
  box.kill('SIGKILL');
  const t0 = Date.now();
  while (alive(ffmpegPid) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
  // a zombie reaped by init is gone as far as kill(0) can tell once init waits for it
  t.notOk(alive(ffmpegPid), `ffmpeg is gone ${Date.now() - t0} ms after the box`);
});
