import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createReadStream, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { connect, createServer as netServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join, normalize, sep } from 'node:path';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { makeLessonFolder, renditionsOf } from './package.js';
import { buildManifest } from '../../daemon/pkg/manifest.js';
import type { Manifest } from '../../daemon/pkg/manifest.js';
import { loadOrCreateHubKey } from '../../daemon/pkg/sign.js';
import { originPath, publishToOrigin } from '../../daemon/pkg/origin.js';

/**
 * A stand-in for the hub in the box's sync tests, built of real parts: a Mosquitto child with a
 * password file, an ACL as the hub's contract writes it and persistence on, and a small HTTP
 * server that answers POST /api/enroll and serves an origin folder made with daemon/pkg (Range,
 * Date header). Hooks alter what it serves: a tampered blob, a missing signature, a wrong clock.
 */
export interface FakeHub {
  school: string;
  channels: string[];
  dir: string;
  originRoot: string;
  publicPem: string;
  mqttPort: number;
  mqttUrl: string;
  httpUrl: string;
  boxPassword: string;
  /** enrollment answers by code; a code not listed gets 401 YCH_ERR_ENROLL_CODE */
  codes: Map<string, { status: number; code?: string; school?: string }>;
  /** every HTTP request path (and Range) */
  requests: Array<{ path: string; range?: string | undefined }>;
  /** sha → times a blob is still served with one byte flipped */
  tamperBlob: Map<string, number>;
  /** sha → the link drops after `after` bytes of a response for this blob, `times` more times */
  cut: Map<string, { after: number; times: number }>;
  /** ids whose .sig is answered 404 */
  unsigned: Set<string>;
  /** ids whose manifest is served with a changed title (signature no longer matches) */
  tamperManifest: Set<string>;
  /** overrides the Date header (ms) */
  dateMs?: number | undefined;
  /** every message the hub's own client saw on `#`, in order */
  seen: Array<{ topic: string; payload: string; retain: boolean }>;
  hubClient: MqttClient;
  addLesson(id: string, o?: { seed?: number; version?: number; channel?: string; publish?: boolean; seconds?: number }): Promise<Manifest>;
  publish(topic: string, payload: string, retain?: boolean): Promise<void>;
  stopBroker(): Promise<void>;
  startBroker(): Promise<void>;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const s = netServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function catalogEntry(m: Manifest): string {
  return JSON.stringify({ id: m.id, title: m.title, channel: m.channel, version: m.version, bytes: m.bytes, durationS: m.durationS, publishedAt: m.publishedAt, manifest: originPath.manifest(m.id) });
}

export async function startFakeHub(dir: string, o: { school?: string; channels?: string[]; otherSchools?: string[] } = {}): Promise<FakeHub> {
  const school = o.school ?? 'escuela-1';
  const schools = [school, ...(o.otherSchools ?? [])];
  const channels = o.channels ?? ['primaria'];
  const originRoot = join(dir, 'origin');
  mkdirSync(originRoot, { recursive: true });
  const key = await loadOrCreateHubKey(join(dir, 'key'));
  const mqttPort = await freePort();
  const boxPassword = 'box-secret-1';
  // the broker as the hub's contract sets it up: nothing anonymous, per-box ACL, persistence on
  const passwd = join(dir, 'passwd');
  writeFileSync(passwd, '');
  execFileSync('mosquitto_passwd', ['-b', passwd, 'hub', 'hub-secret-1']);
  for (const sc of schools) execFileSync('mosquitto_passwd', ['-b', passwd, `box-${sc}`, boxPassword]);
  writeFileSync(join(dir, 'acl'), ['user hub', 'topic readwrite #', '', ...schools.flatMap((sc) => [`user box-${sc}`,
    ...channels.map((c) => `topic read yachay/catalog/${c}/#`),
    `topic read yachay/${sc}/assign/#`, `topic read yachay/${sc}/cmd/#`,
    ...['status', 'telemetry', 'sync/#', 'request/#', 'usage', 'feedback'].map((x) => `topic write yachay/${sc}/${x}`), '']), ''].join('\n'));
  mkdirSync(join(dir, 'mosq'), { recursive: true });
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${mqttPort} 127.0.0.1`, 'allow_anonymous false', `password_file ${passwd}`, `acl_file ${join(dir, 'acl')}`,
    'persistence true', `persistence_location ${join(dir, 'mosq')}/`, 'autosave_interval 1', 'user root', 'max_queued_messages 10000', ''].join('\n'));
  let child: ChildProcess | undefined;
  let mqttLog = '';
  const hub: FakeHub = {
    school, channels, dir, originRoot, publicPem: key.publicPem, mqttPort, mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, httpUrl: '', boxPassword,
    codes: new Map(), requests: [], tamperBlob: new Map(), cut: new Map(), unsigned: new Set(), tamperManifest: new Set(), seen: [],
    hubClient: undefined as unknown as MqttClient,
    async addLesson(id, lo = {}) {
      const folder = makeLessonFolder(join(dir, 'src', `${id}-${lo.version ?? 1}`), { seed: lo.seed ?? 1, seconds: lo.seconds });
      const m = await buildManifest(folder, { id, title: `Lección ${id}`, channel: lo.channel ?? channels[0]!, version: lo.version ?? 1, durationS: lo.seconds ?? 4, renditions: renditionsOf(folder), misses: [] });
      await publishToOrigin(originRoot, folder, m, key.privateKey);
      if (lo.publish !== false) await hub.publish(`yachay/catalog/${m.channel}/${id}`, catalogEntry(m), true);
      return m;
    },
    async publish(topic, payload, retain = false) {
      await hub.hubClient.publishAsync(topic, payload, { qos: 1, retain });
    },
    async stopBroker() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((r) => { c.once('exit', () => r()); c.kill('SIGTERM'); });
    },
    async startBroker() {
      child = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stderr!.on('data', (b: Buffer) => { mqttLog += b.toString(); });
      child.stdout!.on('data', (b: Buffer) => { mqttLog += b.toString(); });
      for (let i = 0; i < 100; i++) {
        const ok = await new Promise<boolean>((r) => {
          const c = connect(mqttPort, '127.0.0.1', () => { c.destroy(); r(true); });
          c.on('error', () => r(false));
        });
        if (ok) return;
        if (child.exitCode !== null) throw new Error(`mosquitto exited: ${mqttLog}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`mosquitto did not listen: ${mqttLog}`);
    },
    async close() {
      await hub.hubClient?.endAsync(true).catch(() => undefined);
      await hub.stopBroker();
      await new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
    },
  };
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
    hub.requests.push({ path, range: req.headers.range });
    if (hub.dateMs !== undefined) res.sendDate = false, res.setHeader('date', new Date(hub.dateMs).toUTCString());
    if (req.method === 'POST' && path === '/api/enroll') {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString(); });
      req.on('end', () => {
        const code = (JSON.parse(body || '{}') as { code?: string }).code ?? '';
        const a = hub.codes.get(code);
        res.setHeader('content-type', 'application/json');
        if (!a) { res.writeHead(401).end(JSON.stringify({ code: 'YCH_ERR_ENROLL_CODE', message: 'unknown code' })); return; }
        if (a.status !== 200) { res.writeHead(a.status).end(JSON.stringify({ code: a.code, message: `code ${a.code}` })); return; }
        const sc = a.school ?? school;
        res.writeHead(200).end(JSON.stringify({ school: sc, name: 'I.E. 54321, Puno', channels, mqtt: { url: hub.mqttUrl, username: `box-${sc}`, password: boxPassword }, hubKey: key.publicPem, origin: hub.httpUrl }));
      });
      return;
    }
    const file = normalize(join(originRoot, path));
    if (!file.startsWith(originRoot + sep)) { res.writeHead(404).end(); return; }
    const idOf = (p: string): string => p.replace(/^\/manifests\//, '').replace(/\.json(\.sig)?$/, '');
    if (path.endsWith('.json.sig') && hub.unsigned.has(idOf(path))) { res.writeHead(404).end(); return; }
    let size: number;
    try { size = statSync(file).size; if (!statSync(file).isFile()) throw new Error('dir'); } catch { res.writeHead(404).end(); return; }
    if (path.endsWith('.json') && hub.tamperManifest.has(idOf(path))) {
      const b = Buffer.from(readFileSync(file, 'utf8').replace(/"title":\s*"[^"]*"/, '"title": "Otra cosa"'));
      res.writeHead(200, { 'content-length': b.length }).end(b); return;
    }
    const sha = /\/blobs\/sha256\/..\/([0-9a-f]{64})$/.exec(path)?.[1];
    if (sha && (hub.tamperBlob.get(sha) ?? 0) > 0) {
      hub.tamperBlob.set(sha, hub.tamperBlob.get(sha)! - 1);
      const b = readFileSync(file); const i = b.length >> 1; b[i] = b[i]! ^ 0xff;
      res.writeHead(200, { 'content-length': b.length }).end(b); return;
    }
    let start = 0; let end = size - 1; let status = 200;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      start = Number(m[1]); end = m[2] ? Number(m[2]) : end; status = 206;
      if (start >= size) { res.writeHead(416, { 'content-range': `bytes */${size}` }).end(); return; }
    }
    res.writeHead(status, { 'content-length': end - start + 1, ...(status === 206 ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}) });
    const cut = sha ? hub.cut.get(sha) : undefined;
    if (cut && cut.times > 0) {
      cut.times--;
      const part = readFileSync(file).subarray(start, Math.min(end + 1, start + cut.after));
      res.write(part, () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  hub.httpUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  await hub.startBroker();
  hub.hubClient = await mqtt.connectAsync(hub.mqttUrl, { username: 'hub', password: 'hub-secret-1', clientId: 'hub-test', clean: false, reconnectPeriod: 200, connectTimeout: 5000 });
  hub.hubClient.on('message', (topic, payload, packet) => { hub.seen.push({ topic, payload: payload.toString(), retain: packet.retain }); });
  await hub.hubClient.subscribeAsync('#', { qos: 1 });
  return hub;
}

/** polls until fn() is truthy, or fails after ms */
export async function until<T>(fn: () => T | Promise<T>, ms = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
