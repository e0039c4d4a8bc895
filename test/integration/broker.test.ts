import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { pino } from 'pino';
import { BrokerService } from '../../daemon/broker/broker.js';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';

// A real broker on ephemeral ports, a real users table, the mqtt npm client and Debian's
// mosquitto clients as separate processes.

const SCHOOL = 's1';
const PW = { ana: 'admin-password-1', tito: 'teacher-password-1', hub: 'device-password-1' };

async function makeUsers(t: Test): Promise<Users> {
  const db = openDb(join(t.testdir(), 'yachay.db'));
  t.teardown(() => db.close());
  const users = new Users(db);
  await users.add('ana', PW.ana, 'admin');
  await users.add('tito', PW.tito, 'teacher');
  await users.add('hub', PW.hub, 'device');
  return users;
}

async function startBroker(t: Test, users: Users, dir = join(t.testdir(), 'broker')): Promise<BrokerService> {
  const svc = new BrokerService({
    cfg: { host: '127.0.0.1', port: 0, wsPort: 0 }, school: SCHOOL, users, dir, log: pino({ level: 'silent' }),
  });
  await svc.start(new AbortController().signal);
  t.teardown(() => svc.stop());
  return svc;
}

async function connect(t: Test, url: string, opts: IClientOptions): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  t.teardown(() => c.endAsync(true));
  return c;
}

function tcp(b: BrokerService): string { return `mqtt://127.0.0.1:${b.ports.tcp}`; }

/** Next message on a topic matching `re`, or undefined after `ms`. */
function nextMessage(c: MqttClient, ms = 3000): Promise<{ topic: string; payload: string; retain: boolean } | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { c.off('message', on); resolve(undefined); }, ms);
    function on(topic: string, payload: Buffer, packet: { retain: boolean }) {
      clearTimeout(timer);
      c.off('message', on);
      resolve({ topic, payload: payload.toString(), retain: packet.retain });
    }
    c.on('message', on);
  });
}

function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** SUBACK return codes; mqtt.js rejects when any is 0x80 but keeps the packet on the error. */
async function granted(c: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos);
  } catch (err) {
    const packet = (err as { packet?: { granted?: number[] } }).packet;
    if (!packet?.granted) throw err;
    return packet.granted;
  }
}

async function refusal(url: string, opts: IClientOptions): Promise<number | undefined> {
  try {
    const c = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    await c.endAsync(true);
    return 0;
  } catch (err) {
    return (err as { code?: number }).code;
  }
}

t.test('broker', async (t) => {
  const users = await makeUsers(t);
  const dir = join(t.testdir(), 'broker');
  const broker = await startBroker(t, users, dir);
  const url = tcp(broker);
  const { tcp: port } = broker.ports;

  t.test('clients without or with wrong credentials are refused (mqtt client)', async (t) => {
    t.equal(await refusal(url, {}), 5, 'no credentials: 5 not authorized');
    t.equal(await refusal(url, { username: 'tito', password: 'wrong-password' }), 4, 'wrong password: 4');
    t.equal(await refusal(url, { username: 'nobody', password: 'whatever-123' }), 4, 'unknown user: 4');
    t.equal(await refusal(url, { username: 'student', password: 'not-a-token' }), 4, 'bad token: 4');
    t.equal(await refusal(`ws://127.0.0.1:${broker.ports.ws}`, {}), 5, 'no credentials over WebSocket: 5');
  });

  t.test('clients without or with wrong credentials are refused (mosquitto_sub)', async (t) => {
    const base = ['-h', '127.0.0.1', '-p', String(port), '-t', 'yachay/s1/health', '-C', '1', '-W', '5'];
    const anon = await run('mosquitto_sub', base);
    t.not(anon.code, 0);
    t.match(anon.stderr, /not authori[sz]ed/i);
    const bad = await run('mosquitto_sub', [...base, '-u', 'tito', '-P', 'wrong-password']);
    t.not(bad.code, 0);
    t.match(bad.stderr, /bad user ?name or password/i);
    const good = await run('mosquitto_sub', [...base, '-u', 'tito', '-P', PW.tito]);
    t.equal(good.code, 0, good.stderr);
    t.match(JSON.parse(good.stdout), { status: 'up' }, 'health is retained');
  });

  t.test('a student on WebSocket receives a class push from a teacher on TCP', async (t) => {
    const student = await connect(t, `ws://127.0.0.1:${broker.ports.ws}`,
      { username: 'student', password: broker.issueStudentToken() });
    t.same(await granted(student, ['yachay/s1/class/room1', 'yachay/s1/cmd/#', '#', 'yachay/+/cmd/+']),
      [1, 128, 128, 128], 'cmd/ and wildcards that reach it refused with 0x80');
    const teacher = await connect(t, url, { username: 'tito', password: PW.tito });
    const got = nextMessage(student);
    await teacher.publishAsync('yachay/s1/class/room1', JSON.stringify({ lesson: 'fracciones' }), { qos: 1 });
    t.match(await got, { topic: 'yachay/s1/class/room1', payload: '{"lesson":"fracciones"}' });
  });

  t.test('a student publish to cmd/ is dropped and its connection closed', async (t) => {
    const device = await connect(t, url, { username: 'hub', password: PW.hub });
    t.same(await granted(device, ['yachay/s1/cmd/+']), [1]);
    const student = await connect(t, url, { username: 'student', password: broker.issueStudentToken() });
    const closed = new Promise<void>((r) => student.once('close', () => r()));
    const got = nextMessage(device, 1000);
    student.publish('yachay/s1/cmd/reboot', 'now', { qos: 1 });
    await closed;
    t.equal(await got, undefined, 'the device never saw it');
    // the device still hears a command from someone allowed to send one
    const admin = await connect(t, url, { username: 'ana', password: PW.ana });
    const next = nextMessage(device);
    await admin.publishAsync('yachay/s1/cmd/sync-now', '1', { qos: 1 });
    t.match(await next, { topic: 'yachay/s1/cmd/sync-now', payload: '1' });
  });

  t.test('a teacher cannot send commands either', async (t) => {
    const device = await connect(t, url, { username: 'hub', password: PW.hub });
    await device.subscribeAsync('yachay/s1/cmd/+', { qos: 1 });
    const got = nextMessage(device, 1000);
    const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-u', 'tito', '-P', PW.tito,
      '-t', 'yachay/s1/cmd/reboot', '-m', 'x', '-q', '1']);
    t.not(r.code, 0, 'mosquitto_pub sees its connection closed');
    t.equal(await got, undefined);
  });

  t.test('mosquitto_pub as a teacher reaches an mqtt subscriber', async (t) => {
    const student = await connect(t, url, { username: 'student', password: broker.issueStudentToken() });
    await student.subscribeAsync('yachay/s1/class/+', { qos: 1 });
    const got = nextMessage(student);
    const r = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-u', 'tito', '-P', PW.tito,
      '-t', 'yachay/s1/class/room1', '-m', 'lesson-7', '-q', '1']);
    t.equal(r.code, 0, r.stderr);
    t.match(await got, { topic: 'yachay/s1/class/room1', payload: 'lesson-7' });
  });

  t.test('another identity cannot take over a connected client id', async (t) => {
    await connect(t, url, { username: 'tito', password: PW.tito, clientId: 'tito-laptop' });
    t.equal(await refusal(url, { username: 'student', password: broker.issueStudentToken(), clientId: 'tito-laptop' }),
      2, 'identifier rejected');
    t.equal(await refusal(url, { username: 'student', password: broker.issueStudentToken(), clientId: 'stu-1', clean: false }),
      5, 'students need a clean session');
    const again = await connect(t, url, { username: 'tito', password: PW.tito, clientId: 'tito-laptop' });
    t.ok(again.connected, 'the same user may reconnect and take its session over');
  });

  t.test('an expired student token is refused', async (t) => {
    const short = new BrokerService({
      cfg: { host: '127.0.0.1', port: 0, wsPort: 0 }, school: SCHOOL, users, dir: join(t.testdir(), 'b2'),
      log: pino({ level: 'silent' }), studentTokenTtlMs: 1,
    });
    await short.start(new AbortController().signal);
    t.teardown(() => short.stop());
    const token = short.issueStudentToken();
    await new Promise((r) => setTimeout(r, 5));
    t.equal(await refusal(tcp(short), { username: 'student', password: token }), 4);
  });

  t.test('a QoS 1 retained message survives a restart', async (t) => {
    const teacher = await mqtt.connectAsync(url, { username: 'tito', password: PW.tito, reconnectPeriod: 0 });
    await teacher.publishAsync('yachay/s1/class/room9', 'kept', { qos: 1, retain: true });
    await teacher.endAsync();
    await broker.stop();
    await broker.stop(); // idempotent

    await broker.start(new AbortController().signal);
    const student = await connect(t, tcp(broker), { username: 'student', password: broker.issueStudentToken() });
    const got = nextMessage(student);
    await student.subscribeAsync('yachay/s1/class/room9', { qos: 1 });
    t.match(await got, { topic: 'yachay/s1/class/room9', payload: 'kept', retain: true });
    const health = nextMessage(student);
    await student.subscribeAsync('yachay/s1/health', { qos: 1 });
    t.match(JSON.parse((await health)?.payload ?? '{}'), { status: 'up' });
  });

  t.test('stop tells connected clients the box is going down', async (t) => {
    const c = await connect(t, tcp(broker), { username: 'ana', password: PW.ana });
    const up = nextMessage(c);
    await c.subscribeAsync('yachay/s1/health', { qos: 1 });
    t.match(JSON.parse((await up)?.payload ?? '{}'), { status: 'up' });
    const down = nextMessage(c);
    await broker.stop();
    t.match(JSON.parse((await down)?.payload ?? '{}'), { status: 'down' });
    t.notOk(broker.healthy());
  });
});
