import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { processesUnder, startHub } from '../helpers/hub.js';
import { sleep } from '../../daemon/hub/ports.js';

// A part dying under the hub is reported with the path of its log, and the hub stops the rest.
t.test('Mosquitto killed under the hub: the hub stops, names the broker log, and leaves no process', async (t) => {
  const dir = join(t.testdir(), 'hub');
  const hub = await startHub(dir);
  const conf = join(dir, 'mosquitto', 'mosquitto.conf');
  const pids = processesUnder(conf);
  t.equal(pids.length, 1, 'one Mosquitto child');
  process.kill(pids[0]!, 'SIGKILL');
  const r = await Promise.race([hub.exited, sleep(20_000).then(() => 'timeout')]);
  if (r === 'timeout') await hub.stop();
  t.not(r, 'timeout', 'the hub exited by itself');
  const exit = r as { code: number | null };
  t.equal(exit.code, 69, 'exit 69 (YCH_ERR_HUB_BROKER)');
  t.match(hub.stderr(), /YCH_ERR_HUB_BROKER: Mosquitto stopped \(SIGKILL\); log: .*mosquitto\.log/);
  await sleep(300);
  t.same(processesUnder(dir), [], 'PostgreSQL was stopped too');
  t.throws(() => readFileSync(join(dir, 'hub.json')), 'hub.json removed: CLI commands say the hub is not running');
});

t.test('PostgreSQL killed under the hub: reported with its log', async (t) => {
  const dir = join(t.testdir(), 'hub');
  const hub = await startHub(dir);
  const pid = Number(readFileSync(join(dir, 'pg', 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  process.kill(pid, 'SIGKILL');
  const r = await Promise.race([hub.exited, sleep(30_000).then(() => 'timeout')]);
  if (r === 'timeout') await hub.stop();
  t.not(r, 'timeout', 'the hub exited by itself');
  t.equal((r as { code: number | null }).code, 69, 'exit 69 (YCH_ERR_HUB_DATABASE)');
  t.match(hub.stderr(), /YCH_ERR_HUB_DATABASE: PostgreSQL stopped .*log: .*postgres\.log/);
  await sleep(300);
  t.same(processesUnder(dir), [], 'Mosquitto was stopped too');
});
