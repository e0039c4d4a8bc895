import t from 'tap';
import type { Test } from 'tap';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { loadConfig } from '../../daemon/config/load.js';
import { buildEdge, type Edge } from '../../daemon/edge.js';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { BrokerService } from '../../daemon/broker/broker.js';

// Issue 10 item 13, server side: the session token rides only the HttpOnly cookie, and a
// logged-in teacher's page gets a short-lived MQTT credential from /api/session instead of
// keeping the password. Whole box (buildEdge), real Aedes over WebSocket as the page connects.

const S = 'escuela-1';
const PASSWORD = 'correct horse battery';

async function startBox(t: Test): Promise<Edge> {
  const cfg = loadConfig({
    env: {},
    overrides: {
      dataDir: t.testdir(), log: { level: 'silent' }, school: S,
      http: { host: '127.0.0.1', port: 0 }, mqtt: { host: '127.0.0.1', port: 0, wsPort: 0 },
      optimize: { models: { vad: false, face: false, rate: false } },
    },
  });
  const edge = await buildEdge(cfg, pino({ level: 'silent' }));
  await edge.app.start();
  t.teardown(() => edge.app.stop('test end'));
  return edge;
}

/** CONNACK: 0 when accepted, else the return code (4 bad credentials, 5 not authorized) */
async function connack(url: string, username: string, password: string): Promise<{ rc: number; client?: mqtt.MqttClient }> {
  try {
    const client = await mqtt.connectAsync(url, { username, password, reconnectPeriod: 0, connectTimeout: 5000 });
    return { rc: 0, client };
  } catch (err) {
    return { rc: (err as { code?: number }).code ?? -1 };
  }
}

interface SessionAnswer { user: { username: string; role: string } | null; mqtt: { username: string; password: string; expiresAt: number } | null; studentToken: string | null }

t.test('login answers no token unless asked; the cookie alone is the session', async (t) => {
  const edge = await startBox(t);
  const url = edge.http.url;
  await edge.users.add('maestra', PASSWORD, 'teacher');
  const post = (body: unknown): Promise<Response> => fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  const page = await post({ username: 'maestra', password: PASSWORD });
  t.equal(page.status, 200);
  const body = (await page.json()) as Record<string, unknown>;
  t.notOk('token' in body, 'no token in the answer a page reads');
  t.match(body, { username: 'maestra', role: 'teacher' });
  const cookie = page.headers.get('set-cookie')!;
  t.match(cookie, /^yachay_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict/);
  t.notOk(JSON.stringify(body).includes(cookie.split(';')[0]!.split('=')[1]!), 'the cookie value appears nowhere in the body');
  const jar = { cookie: cookie.split(';')[0]! };
  const me = (await (await fetch(`${url}/api/session`, { headers: jar })).json()) as SessionAnswer;
  t.same(me.user, { username: 'maestra', role: 'teacher' }, 'the cookie is the session');
  // a page from before this change sends "Bearer undefined" beside its cookie: the cookie still counts
  const stale = await fetch(`${url}/api/users`, { headers: { ...jar, authorization: 'Bearer undefined' } });
  t.equal(stale.status, 403, 'recognised as the teacher (403, not 401)');

  const script = await post({ username: 'maestra', password: PASSWORD, bearer: true });
  const tok = ((await script.json()) as { token?: string }).token;
  t.match(tok, /^[A-Za-z0-9_-]{43}$/, 'scripts ask for the token with "bearer": true');
  t.equal((await fetch(`${url}/api/users`, { headers: { authorization: `Bearer ${tok}` } })).status, 403, 'and it works as a Bearer token');
});

t.test('the first admin from the setup code: no token in the answer either', async (t) => {
  const edge = await startBox(t);
  const code = edge.setup.token!;
  const res = await fetch(`${edge.http.url}/api/setup`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: code, username: 'directora', password: 'una clave larga 123' }),
  });
  t.equal(res.status, 201);
  const body = (await res.json()) as Record<string, unknown>;
  t.notOk('token' in body);
  t.equal(body.role, 'admin');
  t.match(res.headers.get('set-cookie'), /^yachay_session=/);
});

t.test('a teacher\'s page gets a short-lived MQTT credential bound to the user and the role', async (t) => {
  const edge = await startBox(t);
  const url = edge.http.url;
  const ws = `ws://127.0.0.1:${edge.broker.ports.ws}`;
  await edge.users.add('maestra', PASSWORD, 'teacher');
  await edge.users.add('directora', PASSWORD, 'admin');
  const cookieOf = async (username: string): Promise<Record<string, string>> => {
    const r = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: PASSWORD }) });
    return { cookie: r.headers.get('set-cookie')!.split(';')[0]! };
  };
  const session = async (headers: Record<string, string> = {}): Promise<SessionAnswer> => (await fetch(`${url}/api/session`, { headers })).json() as Promise<SessionAnswer>;

  const student = await session();
  t.equal(student.user, null);
  t.equal(student.mqtt, null, 'no user credential without a login');
  t.type(student.studentToken, 'string', 'students keep their read-only token');

  const teacher = await cookieOf('maestra');
  const s1 = await session(teacher);
  t.equal(s1.mqtt!.username, 'maestra');
  t.not(s1.mqtt!.password, PASSWORD);
  t.ok(s1.mqtt!.expiresAt > Date.now() && s1.mqtt!.expiresAt <= Date.now() + 10 * 60_000 + 1000, 'expires within 10 minutes');
  const s2 = await session(teacher);
  t.not(s2.mqtt!.password, s1.mqtt!.password, 'each (re)connect gets a fresh one');

  const ok = await connack(ws, s1.mqtt!.username, s1.mqtt!.password);
  t.equal(ok.rc, 0, 'the broker accepts it over WebSocket');
  t.teardown(() => ok.client?.endAsync(true));
  const granted = await ok.client!.subscribeAsync(`yachay/${S}/jobs/#`);
  t.equal(granted[0]!.qos, 0, 'with the teacher\'s ACL: job progress');
  const refused = await ok.client!.subscribeAsync(`yachay/${S}/cmd/#`).catch((e: { granted?: Array<{ qos: number }> }) => e.granted ?? [{ qos: 128 }]);
  t.equal(refused[0]!.qos, 128, 'and not the admin\'s commands');
  t.equal((await connack(ws, 'directora', s1.mqtt!.password)).rc, 4, 'bound to its user: useless under another name');

  // demoted: the credential issued for the old role stops working
  const admin = await cookieOf('directora');
  const a = await session(admin);
  t.equal(a.mqtt!.username, 'directora');
  await edge.users.add('directora', PASSWORD, 'teacher');
  t.equal((await connack(ws, 'directora', a.mqtt!.password)).rc, 4, 'demoted admin: refused');

  // removed: refused
  edge.users.remove('maestra');
  t.equal((await connack(ws, 'maestra', s2.mqtt!.password)).rc, 4, 'removed teacher: refused');
  t.equal((await session(teacher)).mqtt, null, 'and the removed teacher\'s cookie gets none');
});

t.test('the credential expires', async (t) => {
  const db = openDb(join(t.testdir(), 'y.db'));
  t.teardown(() => db.close());
  const users = new Users(db);
  await users.add('maestra', PASSWORD, 'teacher');
  const broker = new BrokerService({
    cfg: { host: '127.0.0.1', port: 0, wsPort: 0 }, school: S, users, dir: join(t.testdir(), 'broker'),
    log: pino({ level: 'silent' }), userTokenTtlMs: 300,
  });
  await broker.start(new AbortController().signal);
  t.teardown(() => broker.stop());
  const cred = broker.issueUserToken({ username: 'maestra', role: 'teacher' });
  const tcp = `mqtt://127.0.0.1:${broker.ports.tcp}`;
  const first = await connack(tcp, cred.username, cred.password);
  t.equal(first.rc, 0, 'fresh: accepted');
  await first.client!.endAsync(true);
  await new Promise((r) => setTimeout(r, 400));
  t.equal((await connack(tcp, cred.username, cred.password)).rc, 4, 'expired: refused');
});
