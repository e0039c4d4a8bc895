import t from 'tap';
import type { Test } from 'tap';
import { join } from 'node:path';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { pino } from 'pino';
import { BrokerService } from '../../daemon/broker/broker.js';
import { openDb } from '../../daemon/db/db.js';
import type { Db } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { BridgeService } from '../../daemon/sync/bridge.js';
import { CatalogMirror } from '../../daemon/sync/mirror.js';
import { Outbox } from '../../daemon/sync/outbox.js';
import type { Credentials } from '../../daemon/sync/credentials.js';
import { startFakeHub, until } from '../helpers/sync-hub.js';
import type { FakeHub } from '../helpers/sync-hub.js';

// The bridge against a real Mosquitto (the hub's broker, password file, ACL, persistence) and a
// real Aedes (the box's broker), with MQTT.js clients on both sides as the hub and a teacher's
// page would be.

const S = 'escuela-1';
const log = pino({ level: 'silent' });

interface Box { db: Db; broker: BrokerService; outbox: Outbox; mirror: CatalogMirror; local: MqttClient; localSeen: Array<{ topic: string; payload: string }>; creds: Credentials }

async function makeBox(t: Test, hub: FakeHub, dir: string): Promise<Box> {
  const db = openDb(join(dir, 'yachay.db'));
  const users = new Users(db);
  await users.add('ana', 'admin-password-1', 'admin');
  const broker = new BrokerService({ cfg: { host: '127.0.0.1', port: 0, wsPort: 0 }, school: S, users, dir: join(dir, 'broker'), log });
  await broker.start(new AbortController().signal);
  const local = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.ports.tcp}`, { username: 'ana', password: 'admin-password-1', reconnectPeriod: 0 });
  const localSeen: Box['localSeen'] = [];
  local.on('message', (topic, payload) => localSeen.push({ topic, payload: payload.toString() }));
  await local.subscribeAsync(`yachay/${S}/#`, { qos: 1 });
  t.teardown(async () => { await local.endAsync(true); await broker.stop(); db.close(); });
  const creds: Credentials = { school: S, channels: hub.channels, mqtt: { url: hub.mqttUrl, username: `box-${S}`, password: hub.boxPassword }, origin: hub.httpUrl, hub: hub.httpUrl, enrolledAt: Date.now() };
  return { db, broker, outbox: new Outbox(db, S), mirror: new CatalogMirror(db), local, localSeen, creds };
}

function bridgeOf(box: Box, onDown?: (kind: string, rest: string) => void): BridgeService {
  return new BridgeService({
    creds: box.creds, outbox: box.outbox, mirror: box.mirror, version: '0.0.0-test', log, onDown,
    relay: (topic, payload, retain) => box.broker.publish(topic, payload, { qos: 1, retain }),
    backoff: { baseMs: 100, capMs: 800 }, connectTimeoutMs: 3000,
  });
}

const count = (hub: FakeHub, topic: string): number => hub.seen.filter((m) => m.topic === topic).length;

t.test('down-messages are relayed into the local broker and mirrored; nothing comes back up; the outbox drains in order', async (t) => {
  const dir = t.testdir();
  const hub = await startFakeHub(join(dir, 'hub'));
  t.teardown(() => hub.close());
  const box = await makeBox(t, hub, join(dir, 'box'));
  const downs: string[] = [];
  const bridge = bridgeOf(box, (kind, rest) => downs.push(`${kind}:${rest}`));
  t.teardown(() => bridge.stop());
  await bridge.start();
  await until(() => hub.seen.find((m) => m.topic === `yachay/${S}/status` && JSON.parse(m.payload).online === true), 5000, 'online status');
  t.ok(bridge.connected, 'connected to the hub broker');

  const entry = { id: 'agua', title: 'El agua', channel: 'primaria', version: 1, bytes: 10, durationS: 4, publishedAt: '2026-12-03T00:00:00Z', manifest: 'manifests/agua.json' };
  await hub.publish(`yachay/${S}/assign/agua`, JSON.stringify(entry), true);
  await hub.publish('yachay/catalog/primaria/agua', JSON.stringify(entry), true);
  await hub.publish(`yachay/${S}/cmd/sync-now`, '{}');
  await until(() => box.localSeen.some((m) => m.topic === `yachay/${S}/assign/agua`), 5000, 'assign relayed');
  await until(() => downs.includes('cmd:sync-now'), 5000, 'cmd relayed');
  t.same(JSON.parse(box.localSeen.find((m) => m.topic === `yachay/${S}/assign/agua`)!.payload), entry, 'same payload on the local broker');
  t.same(box.mirror.list().map((r) => `${r.kind}:${r.entry.id}`).sort(), ['assign:agua', 'catalog:agua'], 'catalog and assignment mirrored in SQLite');
  // the relayed assignment is retained on the box's broker: a page that connects later gets it
  const late = await mqtt.connectAsync(`mqtt://127.0.0.1:${box.broker.ports.tcp}`, { username: 'ana', password: 'admin-password-1', reconnectPeriod: 0 });
  t.teardown(() => late.endAsync(true));
  const retained = new Promise<boolean>((r) => late.on('message', (topic, _p, packet) => { if (topic === `yachay/${S}/assign/agua`) r(packet.retain); }));
  await late.subscribeAsync(`yachay/${S}/assign/#`, { qos: 1 });
  t.equal(await retained, true, 'retained kept on the box');

  box.outbox.add(`yachay/${S}/sync/ack/agua`, JSON.stringify({ version: 1, at: 1 }));
  for (let i = 0; i < 20; i++) box.outbox.add(`yachay/${S}/telemetry`, JSON.stringify({ i }));
  await until(() => box.outbox.size().rows === 0, 5000, 'outbox drained');
  const tele = hub.seen.filter((m) => m.topic === `yachay/${S}/telemetry`).map((m) => (JSON.parse(m.payload) as { i: number }).i);
  t.same(tele, Array.from({ length: 20 }, (_, i) => i), 'up-messages reach the hub in order');
  t.equal(count(hub, `yachay/${S}/sync/ack/agua`), 1, 'the ack once');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(count(hub, `yachay/${S}/assign/agua`), 1, 'the assignment was not sent back up (loop prevention)');
  t.equal(count(hub, 'yachay/catalog/primaria/agua'), 1, 'nor the catalog entry');
  t.equal(count(hub, `yachay/${S}/cmd/sync-now`), 1, 'nor the command');

  // a withdrawn entry (empty retained payload) leaves the mirror and the box's retained store
  await hub.publish('yachay/catalog/primaria/agua', '', true);
  await until(() => box.mirror.list().every((r) => r.kind !== 'catalog'), 5000, 'withdrawn');
  t.pass('an empty retained payload withdraws the entry');
});

t.test('persistent session: what the hub sent while the box was off arrives; the outbox filled offline drains in order; offline status on stop', async (t) => {
  const dir = t.testdir();
  const hub = await startFakeHub(join(dir, 'hub'));
  t.teardown(() => hub.close());
  const box = await makeBox(t, hub, join(dir, 'box'));
  const downs: string[] = [];
  let bridge = bridgeOf(box, (kind, rest) => downs.push(`${kind}:${rest}`));
  await bridge.start();
  await until(() => bridge.connected, 5000, 'connected');
  await bridge.stop();
  await until(() => hub.seen.some((m) => m.topic === `yachay/${S}/status` && JSON.parse(m.payload).online === false), 5000, 'offline status');
  t.pass('offline status published on stop');
  // while the box is away: a command for it (not retained: only a persistent session keeps it)
  await hub.publish(`yachay/${S}/cmd/sync-now`, '{"n":1}');
  for (let i = 0; i < 5; i++) box.outbox.add(`yachay/${S}/sync/ack/l${i}`, JSON.stringify({ version: 1, at: i }));
  bridge = bridgeOf(box, (kind, rest) => downs.push(`${kind}:${rest}`));
  t.teardown(() => bridge.stop());
  await bridge.start();
  await until(() => downs.includes('cmd:sync-now'), 5000, 'queued command delivered');
  t.pass('the hub kept the command for the box\'s session');
  await until(() => box.outbox.size().rows === 0, 5000, 'outbox drained');
  const acks = hub.seen.filter((m) => m.topic.startsWith(`yachay/${S}/sync/ack/`)).map((m) => m.topic.split('/').pop());
  t.same(acks, ['l0', 'l1', 'l2', 'l3', 'l4'], 'acks in order after reconnecting');
});

t.test('hub broker restarted: the bridge reconnects by itself and resumes; what was queued meanwhile is delivered once', async (t) => {
  const dir = t.testdir();
  const hub = await startFakeHub(join(dir, 'hub'));
  t.teardown(() => hub.close());
  const box = await makeBox(t, hub, join(dir, 'box'));
  const bridge = bridgeOf(box);
  t.teardown(() => bridge.stop());
  await bridge.start();
  await until(() => bridge.connected, 5000, 'connected');
  await hub.stopBroker();
  await until(() => !bridge.connected, 5000, 'noticed the broker went away');
  for (let i = 0; i < 3; i++) box.outbox.add(`yachay/${S}/request/r${i}`, JSON.stringify({ at: i, by: 'tito' }));
  t.equal(box.outbox.size().rows, 3, 'kept while the hub is down');
  await new Promise((r) => setTimeout(r, 600));
  const t0 = Date.now();
  await hub.startBroker();
  await until(() => bridge.connected, 8000, 'reconnected');
  t.ok(Date.now() - t0 < 8000, `reconnected ${Date.now() - t0} ms after the broker came back (backoff capped at 0.8 s here)`);
  await until(() => box.outbox.size().rows === 0, 8000, 'drained after restart');
  await until(() => hub.seen.filter((m) => m.topic.startsWith(`yachay/${S}/request/`)).length >= 3, 8000, 'requests at the hub');
  const reqs = hub.seen.filter((m) => m.topic.startsWith(`yachay/${S}/request/`)).map((m) => m.topic.split('/').pop());
  t.same(reqs, ['r0', 'r1', 'r2'], 'each request once, in order');
  // the subscriptions survived in Mosquitto's persisted session: a new assignment still arrives
  await hub.publish(`yachay/${S}/assign/suelo`, JSON.stringify({ id: 'suelo', title: 'Suelo', channel: 'primaria', version: 1, bytes: 1, durationS: 1, publishedAt: '', manifest: 'manifests/suelo.json' }), true);
  await until(() => box.mirror.get('suelo'), 5000, 'assignment after restart');
  t.pass('down-messages flow again');
});
