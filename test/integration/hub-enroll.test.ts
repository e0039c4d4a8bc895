import t from 'tap';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import pg from 'pg';
import { yachay } from '../helpers/cli.js';
import { processesUnder, startHub } from '../helpers/hub.js';
import type { RunningHub } from '../helpers/hub.js';
import { sleep } from '../../daemon/hub/ports.js';
import { enrollSchool, parseChannels } from '../../daemon/hub/enroll.js';

// One hub (private PostgreSQL + Mosquitto) for the whole file: starting PostgreSQL is the slow part.
let hub: RunningHub;
let db: pg.Pool;
const dir = t.testdir();

t.before(async () => {
  hub = await startHub(join(dir, 'hub'));
  db = new pg.Pool({ connectionString: hub.file().database, max: 2 });
});

/** through the real CLI (the code alone on stdout's last line) */
async function enrollCli(school: string, extra: string[] = []): Promise<string> {
  const r = await yachay(['hub', 'enroll', school, ...extra, '--data-dir', hub.dir]);
  if (r.code !== 0) throw new Error(`enroll failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').pop()!;
}

/** the same function the CLI runs, without starting a node process each time */
async function enroll(school: string, extra: string[] = []): Promise<string> {
  const channels = extra[0] === '--channels' ? parseChannels(extra[1]) : undefined;
  return (await enrollSchool(db, school, `I.E. ${school}, Puno`, channels)).code;
}

async function exchange(code: string): Promise<{ status: number; body: any; date: string | null }> {
  const res = await fetch(`${hub.http}/api/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code, hostname: 'caja-1', version: '0.1.0' }) });
  return { status: res.status, body: await res.json(), date: res.headers.get('date') };
}

function connect(username?: string, password?: string, extra: mqtt.IClientOptions = {}): Promise<MqttClient> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${hub.mqttPort}`, { username, password, reconnectPeriod: 0, connectTimeout: 5000, ...extra });
}

async function refused(username?: string, password?: string): Promise<string> {
  try {
    const c = await connect(username, password);
    await c.endAsync(true);
    return 'accepted';
  } catch (err) {
    return (err as Error).message;
  }
}

t.test('hub start answers /health with a Date header and writes hub.json 0600', async (t) => {
  const res = await fetch(`${hub.http}/health`);
  t.equal(res.status, 200);
  t.match(await res.json(), { ok: true, role: 'hub', broker: true });
  t.ok(res.headers.get('date'), 'Date header (the box clock source)');
  t.equal(statSync(join(hub.dir, 'hub.json')).mode & 0o777, 0o600);
  t.match(hub.file(), { database: /^postgres:\/\/yachay:.+@127\.0\.0\.1:\d+\/yachay$/, broker: { url: `mqtt://127.0.0.1:${hub.mqttPort}`, username: 'hub' } });
  t.equal(statSync(join(hub.dir, 'mosquitto', 'passwd')).mode & 0o777, 0o600, 'the broker password file is 0600');
});

t.test('a one-time code is exchanged once for MQTT credentials and the hub key; wrong, reused, expired and revoked are refused', async (t) => {
  const code = await enrollCli('ie-54321', ['--name', 'I.E. 54321, Puno', '--channels', 'primaria,ciencia']);
  t.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/, `the code alone on stdout's last line: ${code}`);
  const stored = await db.query('SELECT code_sha256 FROM enroll_codes');
  t.notOk(stored.rows.some((r) => r.code_sha256.includes(code)), 'only a hash is stored');

  const ok = await exchange(code.toLowerCase());
  t.equal(ok.status, 200, 'typed in lower case, it still works');
  t.match(ok.body, {
    school: 'ie-54321', name: 'I.E. 54321, Puno', channels: ['primaria', 'ciencia'],
    mqtt: { url: `mqtt://127.0.0.1:${hub.mqttPort}`, username: 'box-ie-54321', password: /^.{20,}$/ },
    hubKey: /BEGIN PUBLIC KEY/, origin: `${hub.http}/`,
  });
  t.ok(ok.date);
  const c = await connect(ok.body.mqtt.username, ok.body.mqtt.password);
  t.ok(c.connected, 'the fresh password works at once (broker reloaded before the answer)');
  await c.endAsync();

  const wrong = await exchange('AAAA-BBBB-CCCC');
  t.same([wrong.status, wrong.body.code], [401, 'YCH_ERR_ENROLL_CODE'], 'wrong code');
  t.ok(wrong.body.message);
  const reused = await exchange(code);
  t.same([reused.status, reused.body.code], [410, 'YCH_ERR_ENROLL_USED'], 'reused code');

  const old = await enroll('ie-54321');
  await db.query("UPDATE enroll_codes SET expires_at = now() - interval '1 second' WHERE used_at IS NULL");
  const expired = await exchange(old);
  t.same([expired.status, expired.body.code], [410, 'YCH_ERR_ENROLL_EXPIRED'], 'expired code');

  const pending = await enroll('ie-54321');
  const rv = await yachay(['hub', 'revoke', 'ie-54321', '--data-dir', hub.dir]);
  t.equal(rv.code, 0, rv.stderr);
  const revoked = await exchange(pending);
  t.same([revoked.status, revoked.body.code], [403, 'YCH_ERR_REVOKED'], 'a code of a revoked school');
  t.match(await refused(ok.body.mqtt.username, ok.body.mqtt.password), /Not authorized/i, 'the revoked box cannot log in');

  const again = await exchange(await enroll('ie-54321'));
  t.equal(again.status, 200, 'enrolling the school again brings it back');
  t.not(again.body.mqtt.password, ok.body.mqtt.password, 'with a new password');
  t.match(await refused(ok.body.mqtt.username, ok.body.mqtt.password), /Not authorized/i, 'the old password stays dead');
});

t.test('ACL: a box reads only its school and channels, writes only its up-topics; nothing anonymous', async (t) => {
  const a = (await exchange(await enroll('esc-a', ['--channels', 'primaria']))).body;
  const b = (await exchange(await enroll('esc-b', ['--channels', 'secundaria']))).body;
  t.match(await refused(), /Not authorized|Bad username/i, 'anonymous refused');
  t.match(await refused('box-esc-a', 'wrong-password'), /Not authorized|Bad username/i, 'wrong password refused');

  const f = hub.file();
  const hubc = await connect(f.broker.username, f.broker.password);
  const boxA = await connect(a.mqtt.username, a.mqtt.password);
  const got: string[] = [];
  boxA.on('message', (topic) => got.push(topic));
  await boxA.subscribeAsync(['yachay/esc-a/assign/#', 'yachay/catalog/primaria/#'], { qos: 1 });
  // Mosquitto 2.0 grants any subscription and filters each message by the ACL at delivery
  await boxA.subscribeAsync(['yachay/esc-b/assign/#', 'yachay/catalog/secundaria/#', '#'], { qos: 1 });
  const hubSeen: string[] = [];
  hubc.on('message', (topic) => hubSeen.push(topic));
  await hubc.subscribeAsync(['yachay/catalog/#', 'yachay/esc-a/#', 'yachay/esc-b/#'], { qos: 1 });

  await hubc.publishAsync('yachay/esc-b/assign/secreto', '{}', { qos: 1 });
  await hubc.publishAsync('yachay/catalog/secundaria/otra', '{}', { qos: 1 });
  await hubc.publishAsync('yachay/esc-a/assign/mia', '{}', { qos: 1 });
  await hubc.publishAsync('yachay/catalog/primaria/suya', '{}', { qos: 1 });
  await boxA.publishAsync('yachay/catalog/primaria/falsa', '{"id":"falsa"}', { qos: 1 });
  await boxA.publishAsync('yachay/esc-b/telemetry', '{}', { qos: 1 });
  await boxA.publishAsync('yachay/esc-a/cmd/sync-now', '{}', { qos: 1 });
  await boxA.publishAsync('yachay/esc-a/telemetry', '{"at":1}', { qos: 1 });
  await sleep(700);
  t.same(got.sort(), ['yachay/catalog/primaria/suya', 'yachay/esc-a/assign/mia'], 'box A receives only its own down-topics');
  t.notOk(hubSeen.includes('yachay/catalog/primaria/falsa'), 'a box cannot publish to the catalog');
  t.notOk(hubSeen.includes('yachay/esc-b/telemetry'), 'nor as another school');
  t.notOk(hubSeen.includes('yachay/esc-a/cmd/sync-now'), 'nor on its own command topic');
  t.ok(hubSeen.includes('yachay/esc-a/telemetry'), 'its own telemetry goes through');
  await boxA.endAsync();
  await hubc.endAsync();
  t.ok(b.mqtt.username === 'box-esc-b');
});

t.test('hub revoke kicks a connected box off and it cannot reconnect', async (t) => {
  const g = (await exchange(await enroll('esc-kick'))).body;
  const box = await connect(g.mqtt.username, g.mqtt.password, { reconnectPeriod: 200 });
  let closes = 0; let reconnectErrors = 0;
  box.on('close', () => closes++);
  box.on('error', (e) => { if (/Not authorized/i.test(e.message)) reconnectErrors++; });
  t.ok(box.connected);
  const rv = await yachay(['hub', 'revoke', 'esc-kick', '--data-dir', hub.dir]);
  t.equal(rv.code, 0, rv.stderr);
  await sleep(1200);
  t.ok(closes >= 1, 'the broker closed the connection');
  t.notOk(box.connected, 'and it is not connected again');
  t.ok(reconnectErrors >= 1, `its reconnect attempts are refused (${reconnectErrors})`);
  await box.endAsync(true);
  const fleet = await (await fetch(`${hub.http}/api/fleet`)).json() as { school: string; revoked: boolean; online: boolean }[];
  t.match(fleet.find((x) => x.school === 'esc-kick'), { revoked: true, online: false });
});

t.test('the fleet view reflects a box status and telemetry message', async (t) => {
  const g = (await exchange(await enroll('esc-fleet'))).body;
  const box = await connect(g.mqtt.username, g.mqtt.password, {
    will: { topic: 'yachay/esc-fleet/status', payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
  });
  await box.publishAsync('yachay/esc-fleet/status', JSON.stringify({ online: true, at: Date.now(), version: '0.1.0' }), { qos: 1, retain: true });
  await box.publishAsync('yachay/esc-fleet/telemetry', JSON.stringify({
    at: 0, version: '0.1.1', diskFreeBytes: 12_345_678_901, tempC: 61.5, lessons: 7, pending: 2, wanBytesLastNight: 52_000_000, errors: 1,
  }), { qos: 1 });
  type Row = { school: string; name: string; online: boolean; version: string; diskFreeBytes: number; tempC: number; lessonsSynced: number; pending: number; wanBytesLastNight: number; errors: number; lastSeen: string };
  let row: Row | undefined;
  for (let i = 0; i < 50 && !row?.diskFreeBytes; i++) {
    await sleep(100);
    row = ((await (await fetch(`${hub.http}/api/fleet`)).json()) as Row[]).find((x) => x.school === 'esc-fleet');
  }
  t.match(row, { school: 'esc-fleet', name: 'I.E. esc-fleet, Puno', online: true, version: '0.1.1', diskFreeBytes: 12_345_678_901, tempC: 61.5, lessonsSynced: 7, pending: 2, wanBytesLastNight: 52_000_000, errors: 1 });
  t.ok(Date.now() - Date.parse(row!.lastSeen) < 30_000, 'last seen by the hub clock, not the box clock (at: 0)');
  await box.publishAsync('yachay/esc-fleet/request/agua', JSON.stringify({ at: Date.now(), by: 'prof-ana' }), { qos: 1 });
  await box.publishAsync('yachay/esc-fleet/sync/report', JSON.stringify({ at: Date.now(), bytes: 1234, seconds: 9, installed: 1, failed: [] }), { qos: 1 });
  let req: { lesson_id: string; requested_by: string } | undefined;
  for (let i = 0; i < 50 && !req; i++) {
    await sleep(100);
    req = (await db.query("SELECT lesson_id, requested_by FROM requests WHERE school = 'esc-fleet'")).rows[0];
  }
  t.same(req, { lesson_id: 'agua', requested_by: 'prof-ana' }, 'a teacher\'s request is recorded');
  const rep = await db.query("SELECT kind, payload FROM sync_reports WHERE school = 'esc-fleet'");
  t.match(rep.rows, [{ kind: 'report', payload: { bytes: 1234, installed: 1 } }], 'the sync report is recorded');
  const tel = await db.query("SELECT count(*)::int AS n FROM telemetry WHERE school = 'esc-fleet'");
  t.equal(tel.rows[0].n, 1, 'telemetry row kept');
  const metrics = await (await fetch(`${hub.http}/metrics`)).text();
  t.match(metrics, /yachay_hub_boxes\{state="online"\} [1-9]/);
  t.match(metrics, /yachay_hub_enroll_failures_total\{code="YCH_ERR_ENROLL_CODE"\} 1/);
  const page = await (await fetch(`${hub.http}/`)).text();
  t.match(page, /Escuelas/);
  // a dropped connection: the last will turns the box offline
  (box as unknown as { stream: { destroy(): void } }).stream.destroy();
  let offline = false;
  for (let i = 0; i < 50 && !offline; i++) {
    await sleep(100);
    offline = ((await (await fetch(`${hub.http}/api/fleet`)).json()) as Row[]).some((x) => x.school === 'esc-fleet' && !x.online);
  }
  t.ok(offline, 'the last will marks it offline');
  await box.endAsync(true);
});

t.test('the origin serves only manifests/ and blobs/', async (t) => {
  for (const p of ['/manifests/..%2f..%2fsecrets.json', '/manifests/../hub.json', '/blobs/..%2f..%2fhub-ed25519.pem', '/secrets.json', '/hub.json']) {
    const res = await fetch(`${hub.http}${p}`);
    t.ok(res.status >= 400, `${p}: ${res.status}`);
    t.notMatch(await res.text(), /PRIVATE KEY|pgPassword|password/);
  }
});

t.test('enroll attempts are limited per address', async (t) => {
  let limited = 0;
  for (let i = 0; i < 12; i++) if ((await exchange(`ZZZZ-ZZZZ-ZZ${String(i).padStart(2, '0')}`)).status === 429) limited++;
  t.ok(limited >= 2, `${limited} of 12 quick guesses answered 429`);
});

t.test('a second hub on the same data dir is refused and leaves the first alone', async (t) => {
  const r = await yachay(['hub', 'start', '--data-dir', hub.dir, '--http-port', '1', '--mqtt-port', '2']);
  t.equal(r.code, 64, r.stderr.slice(-400));
  t.match(r.stderr, /a hub already runs on .* \(pid \d+\)/);
  t.equal(hub.file().pid, hub.proc.pid, 'hub.json still names the first hub');
  t.equal((await fetch(`${hub.http}/health`)).status, 200);
});

t.test('SIGTERM stops the hub, its PostgreSQL and its Mosquitto', async (t) => {
  await db.end();
  const before = processesUnder(hub.dir);
  t.ok(before.length >= 3, `hub, postgres, mosquitto running: ${before.length} processes`);
  const r = await hub.stop();
  t.equal(r.code, 0, hub.stderr().slice(-500));
  await sleep(300);
  t.same(processesUnder(hub.dir), [], 'no process left');
});
