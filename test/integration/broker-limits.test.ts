import t, { type Test } from 'tap';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { pino } from 'pino';
import { BrokerService } from '../../daemon/broker/broker.js';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { LoginLimiter } from '../../daemon/users/login-limiter.js';
import { scryptGate } from '../../daemon/users/hash-gate.js';

// Issue 10, items 1-3: what one client can make the school's broker hold, and how fast it can
// guess passwords. A real Aedes on ephemeral ports, real users (scrypt), the mqtt npm client.

const SCHOOL = 's1';
const PW = 'teacher-password-1';
const ADMIN_PW = 'admin-password-1';

async function setup(t: Test, limiter = new LoginLimiter(5, 60_000)): Promise<{ broker: BrokerService; url: string; limiter: LoginLimiter; users: Users }> {
  const db = openDb(join(t.testdir(), 'yachay.db'));
  t.teardown(() => db.close());
  const users = new Users(db);
  await users.add('tito', PW, 'teacher');
  await users.add('ana', ADMIN_PW, 'admin');
  const broker = new BrokerService({ cfg: { host: '127.0.0.1', port: 0, wsPort: 0 }, school: SCHOOL, users, dir: join(t.testdir(), 'broker'), log: pino({ level: 'silent' }), limiter });
  await broker.start(new AbortController().signal);
  t.teardown(() => broker.stop());
  return { broker, url: `mqtt://127.0.0.1:${broker.ports.tcp}`, limiter, users };
}

/** A client whose TCP connection starts from `from` (any 127.x address is this machine). */
function connectFrom(port: number, from: string, opts: IClientOptions): Promise<{ client?: MqttClient; error?: Error & { code?: number } }> {
  return new Promise((resolve) => {
    const client = new mqtt.MqttClient(() => createConnection({ port, host: '127.0.0.1', localAddress: from }), { reconnectPeriod: 0, connectTimeout: 20_000, protocolVersion: 4, ...opts });
    client.once('connect', () => resolve({ client }));
    client.once('error', (error) => { client.end(true); resolve({ error: error as Error & { code?: number } }); });
    client.once('close', () => resolve({ error: Object.assign(new Error('closed'), { code: -1 }) }));
  });
}

t.test('a packet over the role\'s limit closes the connection before it is buffered; large retained messages are refused', async (t) => {
  const { url } = await setup(t);
  const reader = await mqtt.connectAsync(url, { username: 'tito', password: PW, reconnectPeriod: 0 });
  t.teardown(() => reader.endAsync(true));
  await reader.subscribeAsync(`yachay/${SCHOOL}/class/+`);
  const got: Array<{ topic: string; bytes: number }> = [];
  reader.on('message', (topic, payload) => got.push({ topic, bytes: payload.length }));

  const teacher = await mqtt.connectAsync(url, { username: 'tito', password: PW, reconnectPeriod: 0, clientId: 'tito-1' });
  t.teardown(() => teacher.endAsync(true));
  await teacher.publishAsync(`yachay/${SCHOOL}/class/a`, Buffer.alloc(100 * 1024, 1), { qos: 1 });
  const closed = new Promise<void>((r) => teacher.once('close', () => r()));
  teacher.publish(`yachay/${SCHOOL}/class/b`, Buffer.alloc(2 * 1024 * 1024, 1), { qos: 0 });
  await closed;
  t.pass('a 2 MB publish closed the teacher\'s connection');

  const teacher2 = await mqtt.connectAsync(url, { username: 'tito', password: PW, reconnectPeriod: 0, clientId: 'tito-2' });
  t.teardown(() => teacher2.endAsync(true));
  const closed2 = new Promise<void>((r) => teacher2.once('close', () => r()));
  teacher2.publish(`yachay/${SCHOOL}/class/c`, Buffer.alloc(40 * 1024, 1), { qos: 0, retain: true });
  await closed2;
  t.pass('a 40 kB retained publish is refused (the connection closes: MQTT 3.1.1 has no other "no")');
  await new Promise((r) => setTimeout(r, 300));
  t.same(got, [{ topic: `yachay/${SCHOOL}/class/a`, bytes: 100 * 1024 }], 'only the 100 kB message reached the class');

  const late = await mqtt.connectAsync(url, { username: 'tito', password: PW, reconnectPeriod: 0, clientId: 'late' });
  t.teardown(() => late.endAsync(true));
  const retained: string[] = [];
  late.on('message', (topic) => retained.push(topic));
  await late.subscribeAsync(`yachay/${SCHOOL}/class/+`);
  await new Promise((r) => setTimeout(r, 300));
  t.same(retained, [], 'nothing large was retained for the next page that opens');
});

t.test('MQTT logins are limited per address like HTTP\'s, and HTTP failures count too', async (t) => {
  const { broker, limiter } = await setup(t);
  const port = broker.ports.tcp;
  const codes: Array<number | undefined> = [];
  for (let i = 0; i < 8; i++) {
    const r = await connectFrom(port, '127.0.0.2', { username: 'tito', password: `wrong-${i}`, clientId: `g${i}` });
    codes.push(r.error?.code);
  }
  t.same(codes, Array(8).fill(4), 'eight wrong passwords: "bad user name or password" each');
  const right = await connectFrom(port, '127.0.0.2', { username: 'tito', password: PW, clientId: 'g-right' });
  t.equal(right.error?.code, 4, 'then even the right password is refused from that address');
  const other = await connectFrom(port, '127.0.0.3', { username: 'tito', password: PW, clientId: 'other' });
  t.ok(other.client, 'another device logs in');
  other.client?.end(true);
  // the same limiter counts the HTTP login's failures (edge.ts shares it)
  for (let i = 0; i < 5; i++) limiter.fail('127.0.0.4');
  const afterHttp = await connectFrom(port, '127.0.0.4', { username: 'tito', password: PW, clientId: 'h' });
  t.equal(afterHttp.error?.code, 4, 'five HTTP failures from an address stop its MQTT logins too');
});

t.test('a burst of wrong passwords from many addresses never runs more than two hashes at once', async (t) => {
  const { broker } = await setup(t);
  const port = broker.ports.tcp;
  scryptGate.peak = 0; const refusedBefore = scryptGate.refused;
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) =>
    connectFrom(port, `127.0.1.${i + 1}`, { username: 'tito', password: 'wrong-password', clientId: `flood-${i}` })));
  t.ok(results.every((r) => r.error), 'no wrong password got in');
  t.ok(scryptGate.peak <= 2, `at most ${scryptGate.peak} hashes ran at once`);
  const busy = results.filter((r) => r.error?.code === 3).length;
  t.ok(busy > 0 && scryptGate.refused - refusedBefore === busy, `${busy} were told "server unavailable" without hashing`);
  const teacher = await connectFrom(port, '127.0.2.1', { username: 'tito', password: PW, clientId: 'real' });
  t.ok(teacher.client, 'the real teacher logs in right after');
  teacher.client?.end(true);
});

// issue 10, items 4 and 7
t.test('a removed user is cut off and a demoted one loses the rights of the old role', async (t) => {
  const { broker, url, users } = await setup(t);
  const teacher = await mqtt.connectAsync(url, { username: 'tito', password: PW, reconnectPeriod: 0, clientId: 'tito' });
  t.teardown(() => teacher.endAsync(true));
  const admin = await mqtt.connectAsync(url, { username: 'ana', password: ADMIN_PW, reconnectPeriod: 0, clientId: 'ana' });
  t.teardown(() => admin.endAsync(true));
  const start = Date.now();
  const teacherClosed = new Promise<void>((r) => teacher.once('close', () => r()));
  users.remove('tito');
  await teacherClosed;
  t.ok(Date.now() - start < 7000, `the removed teacher's open connection closed after ${Date.now() - start} ms`);
  await admin.publishAsync(`yachay/${SCHOOL}/cmd/reboot`, 'x', { qos: 1 });
  await users.add('ana', ADMIN_PW, 'teacher');
  const adminClosed = new Promise<void>((r) => admin.once('close', () => r()));
  admin.publish(`yachay/${SCHOOL}/cmd/reboot`, 'x', { qos: 1 });
  await adminClosed;
  t.pass('the demoted admin can no longer publish a command');
});

t.test('an offline session\'s queued messages go only to the user who left them', async (t) => {
  const { broker, url, users } = await setup(t);
  const admin = await mqtt.connectAsync(url, { username: 'ana', password: ADMIN_PW, reconnectPeriod: 0, clientId: 'consola', clean: false });
  await admin.subscribeAsync(`yachay/${SCHOOL}/cmd/+`, { qos: 1 });
  await admin.endAsync();
  await broker.publish(`yachay/${SCHOOL}/cmd/update`, 'secret command', { qos: 1 });
  const thief = await connectFrom(broker.ports.tcp, '127.0.0.5', { username: 'tito', password: PW, clientId: 'consola', clean: false });
  t.equal(thief.error?.code, 2, 'a teacher taking the admin\'s client id is refused');
  const cleanThief = await connectFrom(broker.ports.tcp, '127.0.0.5', { username: 'tito', password: PW, clientId: 'consola', clean: true });
  t.equal(cleanThief.error?.code, 2, 'even with a clean session (it would wipe the admin\'s queue)');
  const back = await mqtt.connectAsync(url, { username: 'ana', password: ADMIN_PW, reconnectPeriod: 0, clientId: 'consola', clean: false });
  t.teardown(() => back.endAsync(true));
  const msg = await new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 3000);
    back.once('message', (_topic, payload) => { clearTimeout(timer); resolve(payload.toString()); });
  });
  t.equal(msg, 'secret command', 'the admin gets the queued command on return');
});

t.test('a device minting student tokens only replaces its own', async (t) => {
  const { broker } = await setup(t);
  const classmates = Array.from({ length: 30 }, (_, i) => broker.issueStudentToken(`192.168.1.${i + 10}`));
  for (let i = 0; i < 20_000; i++) broker.issueStudentToken('192.168.1.99');
  const url = `mqtt://127.0.0.1:${broker.ports.tcp}`;
  const ok = await Promise.all(classmates.slice(0, 5).map(async (password, i) => {
    const c = await mqtt.connectAsync(url, { username: 'student', password, reconnectPeriod: 0, clientId: `stu-${i}` }).catch(() => undefined);
    await c?.endAsync(true);
    return Boolean(c);
  }));
  t.same(ok, [true, true, true, true, true], 'the class\'s tokens still work after one device minted 20,000');
});

// issue 10, item 8
t.test('a damaged broker store is named as such, and a store that stops answering shows in health', async (t) => {
  const { writeFileSync } = await import('node:fs');
  const db = openDb(join(t.testdir(), 'yachay.db'));
  t.teardown(() => db.close());
  const users = new Users(db);
  const dir = join(t.testdir(), 'broker');
  const make = (): BrokerService => new BrokerService({ cfg: { host: '127.0.0.1', port: 0, wsPort: 0 }, school: SCHOOL, users, dir, log: pino({ level: 'silent' }) });
  const first = make();
  await first.start();
  t.ok(first.healthy());
  await first.checkStore();
  t.ok(first.healthy(), 'a working store is healthy');
  // the store's LevelDB closes under the running broker (as a failing SD card would make it fail)
  await (first as unknown as { db: { close(): Promise<void> } }).db.close();
  await first.checkStore();
  t.notOk(first.healthy(), 'health says the broker is not usable');
  await first.stop();
  writeFileSync(join(dir, 'CURRENT'), 'garbage\n');
  await t.rejects(make().start(), { message: /is damaged: .*holds only MQTT sessions and retained messages.*move .* aside/ });
});

t.test('a retained QoS 1 message on a full disk is refused before its PUBACK, said in the log, and delivered once there is room', {
  skip: process.getuid?.() === 0 ? false : 'mounting a small tmpfs for the broker store needs root (CI runs as root)',
}, async (t) => {
  const { spawnSync } = await import('node:child_process');
  const { mkdtempSync, rmSync, statfsSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const mnt = mkdtempSync(join(tmpdir(), 'ych-brokerfull-'));
  t.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]).status, 0, 'tmpfs mounted');
  t.teardown(() => { spawnSync('umount', ['-l', mnt]); rmSync(mnt, { recursive: true, force: true }); });
  const db = openDb(join(t.testdir(), 'yachay.db'));
  t.teardown(() => db.close());
  const users = new Users(db);
  await users.add('tito', PW, 'teacher');
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s)); } });
  const broker = new BrokerService({ cfg: { host: '127.0.0.1', port: 0, wsPort: 0 }, school: SCHOOL, users, dir: join(mnt, 'broker'), log });
  await broker.start(new AbortController().signal);
  t.teardown(() => broker.stop());
  const url = `mqtt://127.0.0.1:${broker.ports.tcp}`;

  const teacher = await mqtt.connectAsync(url, { username: 'tito', password: PW, clientId: 'tito-full', reconnectPeriod: 300 });
  t.teardown(() => teacher.endAsync(true));
  await teacher.publishAsync(`yachay/${SCHOOL}/class/antes`, 'con espacio', { qos: 1, retain: true });
  t.pass('a retained message is stored while there is room');

  const filler = join(mnt, 'relleno.bin');
  const s = statfsSync(mnt);
  writeFileSync(filler, Buffer.alloc(Math.max(0, s.bavail * s.bsize - 64 * 1024)));
  let acked = false;
  const closed = new Promise<void>((r) => teacher.once('close', () => r()));
  const sent = teacher.publishAsync(`yachay/${SCHOOL}/class/lleno`, 'sin espacio', { qos: 1, retain: true }).then(() => { acked = true; });
  await closed;
  await new Promise((r) => setTimeout(r, 500));
  t.notOk(acked, 'no PUBACK while the disk is full: the sender still holds the message');
  const said = lines.find((l) => l.code === 'YCH_ERR_DISK_FULL' && l.topic === `yachay/${SCHOOL}/class/lleno`);
  t.ok(said, 'the log names the refused topic as disk full');

  rmSync(filler);
  await Promise.race([sent, new Promise((_, rej) => setTimeout(() => rej(new Error('not delivered within 10 s after room came back')), 10_000))]);
  t.ok(acked, 'acknowledged once there is room (the client sent it again after reconnecting)');
  const late = await mqtt.connectAsync(url, { username: 'tito', password: PW, reconnectPeriod: 0, clientId: 'late-full' });
  t.teardown(() => late.endAsync(true));
  const retained: string[] = [];
  late.on('message', (topic, payload) => retained.push(`${topic}=${payload.toString()}`));
  await late.subscribeAsync(`yachay/${SCHOOL}/class/+`);
  await new Promise((r) => setTimeout(r, 400));
  t.same(retained.sort(), [`yachay/${SCHOOL}/class/antes=con espacio`, `yachay/${SCHOOL}/class/lleno=sin espacio`], 'both retained messages are there for the next page');
});
