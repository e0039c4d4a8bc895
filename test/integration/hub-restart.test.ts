import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { yachay } from '../helpers/cli.js';
import { startHub } from '../helpers/hub.js';
import type { RunningHub } from '../helpers/hub.js';
import { sleep } from '../../daemon/hub/ports.js';
import { enrollSchool } from '../../daemon/hub/enroll.js';
import { verifyManifest } from '../../daemon/pkg/sign.js';
import { fetchBytes } from '../../daemon/pkg/fetch.js';

// A hub stopped and started again on its data dir keeps its catalog, the boxes' accounts and
// the retained catalog entries (Mosquitto persistence); adding a lesson again makes version 2.
t.test('restart keeps catalog, accounts and retained entries; a re-added lesson becomes version 2', async (t) => {
  const dir = join(t.testdir(), 'hub');
  const clip = join(dir, '..', 'repaso.mp4');
  const env = { YACHAY_OPTIMIZE_VERIFY: 'false' };
  const [first, s] = await Promise.all([startHub(dir, env), yachay(['sample', '--seconds', '4', '--out', clip])]);
  let hub: RunningHub = first;
  t.teardown(async () => { await hub.stop(); });
  t.equal(s.code, 0, s.stderr);

  let db = new pg.Pool({ connectionString: hub.file().database, max: 1 });
  const { code } = await enrollSchool(db, 'ie-reinicio', 'I.E. Reinicio', undefined);
  await db.end();
  const grant = await (await fetch(`${hub.http}/api/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }) })).json() as
    { channels: string[]; mqtt: { username: string; password: string }; hubKey: string };
  t.same(grant.channels, ['general'], 'a school without --channels gets the general channel');
  const a1 = await yachay(['hub', 'add', clip, '--title', 'Repaso de fracciones', '--data-dir', hub.dir, '--wait']);
  t.equal(a1.code, 0, a1.stderr.slice(-800));
  const id = a1.stdout.trim().split('\n').pop()!;

  const stopped = await hub.stop();
  t.equal(stopped.code, 0, 'clean stop');
  hub = await startHub(dir, env);
  t.pass('started again on the same data dir (no initdb)');

  const box = await mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { username: grant.mqtt.username, password: grant.mqtt.password, reconnectPeriod: 0 });
  t.ok(box.connected, 'the box account survived the restart');
  const seen: { version: number }[] = [];
  box.on('message', (_topic, p) => { if (p.length) seen.push(JSON.parse(p.toString()) as { version: number }); });
  await box.subscribeAsync('yachay/catalog/general/#', { qos: 1 });
  for (let i = 0; i < 30 && !seen.length; i++) await sleep(100);
  t.match(seen[0], { id, version: 1 }, 'the retained catalog entry survived (persistence on)');

  const a2 = await yachay(['hub', 'add', clip, '--title', 'Repaso de fracciones', '--data-dir', hub.dir, '--wait']);
  t.equal(a2.code, 0, a2.stderr.slice(-800));
  t.equal(a2.stdout.trim().split('\n').pop(), id, 'same title, same lesson id');
  for (let i = 0; i < 30 && seen.length < 2; i++) await sleep(100);
  t.match(seen[1], { id, version: 2 }, 'the box hears version 2');
  db = new pg.Pool({ connectionString: hub.file().database, max: 1 });
  t.equal((await db.query('SELECT version FROM lessons WHERE id = $1', [id])).rows[0].version, 2);
  t.equal((await db.query('SELECT count(*)::int AS n FROM lessons')).rows[0].n, 1, 'one row per lesson');
  await db.end();
  const { body } = await fetchBytes(`${hub.http}/manifests/${id}.json`);
  const sig = readFileSync(join(dir, 'origin', 'manifests', `${id}.json.sig`), 'utf8');
  t.match(verifyManifest(body, sig, grant.hubKey, 'v2'), { id, version: 2 }, 'version 2 signed with the same hub key');
  await box.endAsync();
});
