import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { run } from '../../daemon/media/run.js';
import { GovernorService } from '../../daemon/telemetry/governor.js';

// issue 11, item 4: a hot box pauses its encodes (real ffmpeg, SIGSTOP) and resumes them cooled
function states(parent: number): string[] {
  const pids = spawnSync('pgrep', ['-P', String(parent), 'ffmpeg'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
  // field 3 of /proc/<pid>/stat: R running, S sleeping, T stopped
  return pids.map((p) => readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[0]!);
}

t.test('the governor pauses ffmpeg when hot or under-powered and resumes it when cool', async (t) => {
  const dir = t.testdir();
  const thermal = join(dir, 'temp'); const throttled = join(dir, 'get_throttled');
  writeFileSync(thermal, '55000\n'); writeFileSync(throttled, '0\n');
  const gov = new GovernorService({ thermalFiles: [thermal, join(dir, 'missing')], throttledFile: throttled, hotC: 80, resumeC: 70, intervalMs: 60_000 }, pino({ level: 'silent' }));
  await gov.start();
  t.teardown(() => gov.stop());
  const encode = run('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=10:d=4', '-f', 'null', '-']);
  await new Promise((r) => setTimeout(r, 300));
  t.same(states(process.pid).filter((s) => s === 'T'), [], 'running while cool');
  writeFileSync(thermal, '84500\n');
  t.match(await gov.check(), { tempC: 84.5, paused: true });
  await new Promise((r) => setTimeout(r, 100));
  t.same(states(process.pid), ['T'], 'stopped at 84.5 °C');
  writeFileSync(thermal, '74000\n');
  t.match(await gov.check(), { paused: true }, 'still paused between the thresholds');
  writeFileSync(thermal, '69000\n');
  t.match(await gov.check(), { paused: false });
  t.notOk(states(process.pid).includes('T'), 'running again at 69 °C');
  writeFileSync(throttled, '0x50005\n');
  t.match(await gov.check(), { underVoltage: true, paused: true }, 'under-voltage pauses too');
  writeFileSync(throttled, '0x50000\n');
  t.match(await gov.check(), { underVoltage: false, paused: false }, 'past under-voltage (bit 16) does not');
  await encode;
  t.pass('the encode finished after its pause');
});
