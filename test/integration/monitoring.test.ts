import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, ROOT } from '../helpers/cli.js';

// issue 11, item 5: alert rules unit-tested by promtool; Debian's Prometheus scrapes a running
// box; the box dashboard asks only for metrics the box exports
const MON = fileURLToPath(new URL('../../provisioning/monitoring/', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); }); });
}

t.test('promtool checks and unit-tests the alert rules', async (t) => {
  const check = spawnSync('promtool', ['check', 'rules', join(MON, 'alerts.yml')], { encoding: 'utf8' });
  t.equal(check.status, 0, check.stdout + check.stderr);
  const test = spawnSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: MON, encoding: 'utf8' });
  t.equal(test.status, 0, test.stdout + test.stderr);
});

t.test('Prometheus scrapes a running box, and the box dashboard finds its metrics', async (t) => {
  const dir = t.testdir();
  const box = spawn(process.execPath, [BIN, 'start', '--data-dir', join(dir, 'box'), '--http-port', '0', '--mqtt-port', '0', '--mqtt-ws-port', '0'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, YACHAY_LOG_LEVEL: 'warn' } });
  t.teardown(() => { if (box.exitCode === null) box.kill('SIGKILL'); });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`box not ready: ${err}`)), 60_000);
    box.stderr!.on('data', (c: Buffer) => { err += c.toString(); const m = /ready — (http:\/\/[^\s]+)/.exec(err); if (m) { clearTimeout(timer); resolve(m[1]!); } });
  });
  const target = new URL(url).host;
  const promPort = await freePort();
  writeFileSync(join(dir, 'prometheus.yml'), `global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [${JSON.stringify(join(MON, 'alerts.yml'))}]\nscrape_configs:\n  - job_name: yachay\n    static_configs: [{targets: ['${target}']}]\n`);
  const prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => { prom.kill('SIGTERM'); });
  let promErr = '';
  prom.stderr!.on('data', (c: Buffer) => { promErr = (promErr + c.toString()).slice(-4000); });
  const query = async (q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> => {
    const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`).catch(() => undefined);
    if (!r?.ok) return [];
    return ((await r.json()) as { data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } }).data.result;
  };
  let up: string | undefined;
  for (let i = 0; i < 60 && up !== '1'; i++) {
    await new Promise((r) => setTimeout(r, 500));
    up = (await query('up{job="yachay"}'))[0]?.value[1];
  }
  t.equal(up, '1', `Prometheus scrapes the box (${promErr.split('\n').slice(-3).join(' ')})`);
  const jobs = await query('yachay_jobs');
  t.ok(jobs.some((r) => r.metric.state === 'queued'), 'the queue is in Prometheus');
  const disk = await query('yachay_disk_free_bytes / yachay_disk_size_bytes');
  t.ok(Number(disk[0]?.value[1]) > 0, `disk free ratio ${disk[0]?.value[1]}`);

  const exported = new Set([...(await (await fetch(`${url}/metrics`)).text()).matchAll(/^# TYPE (yachay_[a-z_]+)/gm)].map((m) => m[1]!));
  const dashboard = JSON.parse(readFileSync(join(MON, 'grafana-box.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
  for (const p of dashboard.panels) {
    for (const name of p.targets.flatMap((x) => [...x.expr.matchAll(/\b(yachay_[a-z_]+)/g)].map((m) => m[1]!))) {
      t.ok(exported.has(name) || name === 'yachay_temperature_celsius', `${p.title}: ${name} is exported`);
    }
  }
});
