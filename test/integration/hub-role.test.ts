import t from 'tap';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { yachay } from '../helpers/cli.js';
import { startHub } from '../helpers/hub.js';
import { sleep } from '../../daemon/hub/ports.js';

// issue 11: k3s/overlays/hub runs the hub as `api` replicas and KEDA-scaled `worker` replicas,
// told apart by YACHAY_HUB_ROLE. The api hub enrolls and serves but never encodes; the worker
// encodes every job and offers nothing but /health and /metrics.
t.test('YACHAY_HUB_ROLE: the api hub leaves every encode to the worker', async (t) => {
  const root = t.testdir();
  const clip = join(root, 'clase.mp4');
  const env = { YACHAY_OPTIMIZE_VERIFY: 'false' };
  const [api, s] = await Promise.all([startHub(join(root, 'api'), { ...env, YACHAY_HUB_ROLE: 'api' }), yachay(['sample', '--seconds', '4', '--out', clip])]);
  t.teardown(async () => { await api.stop(); });
  t.equal(s.code, 0, s.stderr);
  const fa = api.file();
  t.equal((await fetch(`${api.http}/api/fleet`)).status, 200, 'the api hub serves the fleet view');
  const add = await yachay(['hub', 'add', clip, '--title', 'Lección uno', '--data-dir', api.dir]);
  t.equal(add.code, 0, add.stderr);
  const db = new pg.Pool({ connectionString: fa.database, max: 1 });
  t.teardown(() => db.end());
  // a hub that encodes polls its queue every second: six seconds untouched is a hub that does not
  await sleep(6000);
  const waiting = await db.query("SELECT state FROM pgboss.job WHERE name = 'hub-optimize'");
  t.same(waiting.rows.map((r: { state: string }) => r.state), ['created'], 'with only the api hub up, the job waits in the queue');

  mkdirSync(join(root, 'w'));
  copyFileSync(join(api.dir, 'hub-ed25519.pem'), join(root, 'w', 'hub-ed25519.pem'));
  const broker = new URL(fa.broker.url);
  broker.username = 'hub'; broker.password = fa.broker.password;
  const worker = await startHub(join(root, 'w'), { ...env, YACHAY_HUB_ROLE: 'worker' }, ['--database', fa.database, '--broker', broker.toString(), '--origin', join(api.dir, 'origin')]);
  t.teardown(async () => { await worker.stop(); });
  const health = await (await fetch(`${worker.http}/health`)).json() as { ok: boolean; hubRole: string };
  t.same([health.ok, health.hubRole], [true, 'worker'], 'the worker answers /health (its probes)');
  t.equal((await fetch(`${worker.http}/metrics`)).status, 200, 'and /metrics');
  for (const [method, path] of [['GET', '/api/fleet'], ['POST', '/api/enroll'], ['GET', '/']] as const) {
    t.equal((await fetch(`${worker.http}${path}`, { method })).status, 404, `worker: no ${method} ${path}`);
  }

  let n = 0;
  for (let i = 0; i < 900 && n < 1; i++) {
    await sleep(200);
    n = (await db.query('SELECT count(*)::int AS n FROM lessons')).rows[0].n;
  }
  t.equal(n, 1, 'the lesson is published once the worker is up');
  // the row is written before the log line reaches the test through the hub's stderr pipe
  for (let i = 0; i < 50 && !/"lesson published"/.test(worker.stderr() + api.stderr()); i++) await sleep(100);
  t.equal((worker.stderr().match(/"lesson published"/g) ?? []).length, 1, 'by the worker');
  t.equal((api.stderr().match(/"lesson published"/g) ?? []).length, 0, 'not by the api hub');
});

t.test('a worker without a shared database, or an unknown role, is refused before starting', async (t) => {
  const root = t.testdir();
  const alone = await yachay(['hub', 'start', '--data-dir', join(root, 'w'), '--http-port', '65001', '--mqtt-port', '65002'], { env: { ...process.env, YACHAY_HUB_ROLE: 'worker' } });
  t.not(alone.code, 0);
  t.match(alone.stderr, /--database URL and --broker URL/);
  const junk = await yachay(['hub', 'start', '--data-dir', join(root, 'x'), '--http-port', '65001', '--mqtt-port', '65002'], { env: { ...process.env, YACHAY_HUB_ROLE: 'encoder' } });
  t.equal(junk.code, 78);
  t.match(junk.stderr, /hub\.role: must be equal to one of the allowed values.*YACHAY_HUB_ROLE/);
});
