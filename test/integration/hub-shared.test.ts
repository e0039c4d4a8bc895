import t from 'tap';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { yachay } from '../helpers/cli.js';
import { processesUnder, startHub } from '../helpers/hub.js';
import { sleep } from '../../daemon/hub/ports.js';
import { verifyManifest } from '../../daemon/pkg/sign.js';

// Production shape on one machine: hub B runs against hub A's PostgreSQL and Mosquitto
// (--database, --broker), shares its origin and signing key, and the two share the encode queue.
t.test('two hubs on one database share the hub-optimize queue and publish into one origin', async (t) => {
  const root = t.testdir();
  const clip = join(root, 'clase.mp4');
  const env = { YACHAY_OPTIMIZE_VERIFY: 'false' };
  const [a, s] = await Promise.all([startHub(join(root, 'a'), env), yachay(['sample', '--seconds', '4', '--out', clip])]);
  t.teardown(async () => { await a.stop(); });
  t.equal(s.code, 0, s.stderr);
  const fa = a.file();
  mkdirSync(join(root, 'b'));
  copyFileSync(join(a.dir, 'hub-ed25519.pem'), join(root, 'b', 'hub-ed25519.pem'));
  const broker = new URL(fa.broker.url);
  broker.username = 'hub'; broker.password = fa.broker.password;
  const b = await startHub(join(root, 'b'), env, ['--database', fa.database, '--broker', broker.toString(), '--origin', join(a.dir, 'origin')]);
  t.teardown(async () => { await b.stop(); });
  t.same(processesUnder(b.dir).filter((p) => p !== b.proc.pid), [], 'hub B started no PostgreSQL or Mosquitto of its own');
  t.equal(b.file().database, fa.database);

  for (const title of ['Lección uno', 'Lección dos']) {
    const r = await yachay(['hub', 'add', clip, '--title', title, '--data-dir', b.dir]);
    t.equal(r.code, 0, r.stderr);
  }
  const db = new pg.Pool({ connectionString: fa.database, max: 1 });
  t.teardown(() => db.end());
  let n = 0;
  for (let i = 0; i < 900 && n < 2; i++) {
    await sleep(200);
    n = (await db.query('SELECT count(*)::int AS n FROM lessons')).rows[0].n;
  }
  t.equal(n, 2, 'both lessons published');
  // both rows are written before their log lines reach the test through the hubs' stderr pipes
  const logged = (): number => ((a.stderr() + b.stderr()).match(/"lesson published"/g) ?? []).length;
  for (let i = 0; i < 50 && logged() < 2; i++) await sleep(100);
  const byA = (a.stderr().match(/"lesson published"/g) ?? []).length;
  const byB = (b.stderr().match(/"lesson published"/g) ?? []).length;
  t.equal(byA + byB, 2, `each job ran once (hub A ${byA}, hub B ${byB})`);
  t.ok(byA >= 1 && byB >= 1, 'while one hub encoded, the other took the next job');
  const pem = readFileSync(join(a.dir, 'hub-ed25519.pub.pem'), 'utf8');
  for (const id of ['leccion-uno', 'leccion-dos']) {
    const res = await fetch(`${a.http}/manifests/${id}.json`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const sig = await (await fetch(`${b.http}/manifests/${id}.json.sig`)).text();
    t.equal(verifyManifest(bytes, sig, pem, id).id, id, `${id}: one origin, served by both hubs, one key`);
  }
});
