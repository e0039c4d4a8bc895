import t from 'tap';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { yachay } from '../helpers/cli.js';
import { startHub } from '../helpers/hub.js';
import { freePort } from '../../daemon/hub/ports.js';

// As root, PostgreSQL runs as `postgres`: a data dir under a folder closed to other users gets a
// clear refusal (not initdb's bare "Permission denied"), and the test helper's way around it works
t.test('a hub data dir the postgres user cannot reach', { skip: process.getuid?.() !== 0 ? 'only root runs PostgreSQL as another user' : false }, async (t) => {
  const closed = mkdtempSync('/tmp/ych-closed-');
  chmodSync(closed, 0o700);
  t.teardown(() => rmSync(closed, { recursive: true, force: true }));
  const r = await yachay(['hub', 'start', '--data-dir', join(closed, 'hub'), '--http-port', String(await freePort()), '--mqtt-port', String(await freePort())]);
  t.equal(r.code, 69, r.stderr.slice(-600));
  t.match(r.stderr, new RegExp(`postgres user cannot reach .*${closed} is closed to other users.*chmod o\\+x ${closed}`));
  const hub = await startHub(join(closed, 'hub2'));
  t.teardown(() => hub.stop());
  t.equal((await fetch(`${hub.http}/health`)).status, 200, 'through a reachable folder the hub starts');
});
