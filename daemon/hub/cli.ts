import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { ERRORS, YachayError, isYachayError, reportError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { killAllChildren } from '../media/run.js';
import { Hub, HUB_FILE } from './hub.js';
import type { HubFile } from './hub.js';
import { connectPool } from './db.js';
import { checkSchool, enrollSchool, parseChannels, revokeSchool } from './enroll.js';
import { notRunning, waitApplied } from './auth-sync.js';
import { QUEUE, enqueueRecording, openBoss } from './ingest.js';
import type { IngestOutput } from './ingest.js';
import { DEFAULT_CHANNEL } from './enroll.js';
import type { CatalogEntry } from './hub-mqtt.js';
import { originPath } from '../pkg/origin.js';
import { sleep } from './ports.js';

/** `yachay hub start|enroll|add|revoke|assign`: the central hub (issue 9). */
export const HUB_HELP = `yachay hub — el hub central / the central hub

  yachay hub start --data-dir DIR --http-port N --mqtt-port N [--bind ADDR]
                   [--database postgres://…] [--broker mqtt://hub:PASSWORD@HOST:PORT] [--public-mqtt mqtt://HOST:PORT]
                   [--origin DIR]   (hubs on one database share the queue, the origin and hub-ed25519.pem)
                                       hub con PostgreSQL y Mosquitto propios si no se dan / own PostgreSQL and Mosquitto unless given
  yachay hub enroll SCHOOL --name "I.E. 54321, Puno" [--channels a,b] --data-dir DIR
                                       código de inscripción de un solo uso (7 días) / one-time enrollment code (7 days)
  yachay hub add FILE --title T [--channel C] [--id ID] --data-dir DIR [--wait]
                                       codifica y publica una lección / encode and publish a lesson
  yachay hub revoke SCHOOL --data-dir DIR
                                       da de baja la caja de la escuela / cut the school's box off
  yachay hub assign SCHOOL LESSON --data-dir DIR
                                       asigna una lección a una escuela / assign a lesson to a school
  yachay hub release BUNDLE.tar.gz --data-dir DIR [--arch arm64]
                                       publica una versión firmada; las cajas la instalan de noche y vuelven
                                       atrás si /health falla / publish a signed release; boxes install it at
                                       night and roll back if /health fails
`;

const OPTIONS = {
  'data-dir': { type: 'string' },
  'http-port': { type: 'string' },
  'mqtt-port': { type: 'string' },
  bind: { type: 'string' },
  database: { type: 'string' },
  broker: { type: 'string' },
  'public-mqtt': { type: 'string' },
  origin: { type: 'string' },
  title: { type: 'string' },
  channel: { type: 'string' },
  id: { type: 'string' },
  wait: { type: 'boolean', default: false },
  name: { type: 'string' },
  channels: { type: 'string' },
  arch: { type: 'string' },
  config: { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function port(v: string | undefined, flag: string): number {
  if (v === undefined || !/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new YachayError('YCH_ERR_USAGE', `hub start needs ${flag} N (1-65535)`);
  return Number(v);
}

const report = reportError;

export async function hubCommand(argv: string[]): Promise<number> {
  let values: Values; let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (err) {
    process.stderr.write(`yachay hub: ${(err as Error).message}\n${HUB_HELP}`);
    return 64;
  }
  const [cmd, ...rest] = positionals;
  if (values.help || !cmd) { process.stdout.write(HUB_HELP); return values.help ? 0 : 64; }
  const dataDir = resolve(values['data-dir'] ?? '.yachay-hub');
  try {
    switch (cmd) {
      case 'start': return await startCommand(dataDir, values);
      case 'enroll': return await withDb(dataDir, async (pool) => {
        const school = checkSchool(rest[0]);
        const r = await enrollSchool(pool, school, values.name, parseChannels(values.channels));
        process.stderr.write(`${r.created ? 'escuela creada / school created' : 'escuela actualizada / school updated'}: ${school}\n` +
          `código de un solo uso, vence / one-time code, expires ${r.expiresAt.toISOString()}:\n`);
        process.stdout.write(`${r.code}\n`);
        return 0;
      });
      case 'revoke': return await withDb(dataDir, async (pool) => {
        const school = checkSchool(rest[0]);
        const version = await revokeSchool(pool, school);
        if (!(await waitApplied(pool, version, 10_000))) throw notRunning(dataDir);
        process.stderr.write(`dada de baja / revoked: ${school} (sin cuenta MQTT, desconectada / no MQTT account, disconnected)\n`);
        return 0;
      });
      case 'add': return await addCommand(dataDir, rest, values);
      case 'assign': return await assignCommand(dataDir, rest);
      case 'release': {
        if (rest.length !== 1) throw new YachayError('YCH_ERR_USAGE', 'hub release needs exactly one bundle (yachay-<version>-linux-<arch>.tar.gz)');
        const { publishRelease } = await import('./release.js');
        const r = await publishRelease(dataDir, await readHubFile(dataDir), rest[0]!, { arch: values.arch });
        process.stderr.write(`publicada / published: ${r.manifest.version} (${r.manifest.arch}, ${(r.manifest.size / 1e6).toFixed(1)} MB, sha256 ${r.manifest.sha256.slice(0, 12)}…) en / on ${r.topic}\n`);
        process.stdout.write(`${r.manifest.version}\n`);
        return 0;
      }
      default:
        throw new YachayError('YCH_ERR_USAGE', `unknown hub command "${cmd}" (start, enroll, add, revoke, assign, release)`);
    }
  } catch (err) {
    return report(err);
  }
}

async function startCommand(dataDir: string, values: Values): Promise<number> {
  const cfg = loadConfig({ file: values.config, env: { YACHAY_LOG_LEVEL: 'info', ...process.env }, overrides: values['log-level'] ? { log: { level: values['log-level'] } } : {} });
  const log = createLogger(cfg.log.level);
  const hub = new Hub({
    dataDir, httpPort: port(values['http-port'], '--http-port'), mqttPort: port(values['mqtt-port'], '--mqtt-port'),
    bind: values.bind ?? '127.0.0.1', database: values.database, broker: values.broker, publicMqttUrl: values['public-mqtt'], origin: values.origin,
    optimize: cfg.optimize, role: cfg.hub.role,
  }, log.child({ svc: 'hub' }));
  let signals = 0;
  let stopped!: (why: string) => void;
  const done = new Promise<string>((r) => { stopped = r; });
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) { killAllChildren(); process.exit(130); }
    process.stderr.write(`\nyachay hub: ${sig}, deteniendo / stopping… (again to force)\n`);
    stopped(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    try {
      await Promise.race([hub.start(), done.then((s) => { throw new YachayError('YCH_ERR_ABORTED', `stopped by ${s} while starting`); })]);
    } catch (err) {
      await hub.stop();
      throw err;
    }
    process.stderr.write(`yachay hub: listo / ready — ${hub.url}  (MQTT ${values['mqtt-port']}, ${join(dataDir, HUB_FILE)})\n`);
    const crash = hub.crashed.then((why) => ({ why }));
    const r = await Promise.race([done.then(() => undefined), crash]);
    await hub.stop();
    if (r) {
      log.error({ why: r.why }, 'a hub part crashed');
      const code = r.why.startsWith('PostgreSQL') ? 'YCH_ERR_HUB_DATABASE' : 'YCH_ERR_HUB_BROKER';
      throw new YachayError(code, r.why);
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function readHubFile(dataDir: string): Promise<HubFile> {
  try {
    return JSON.parse(await readFile(join(dataDir, HUB_FILE), 'utf8')) as HubFile;
  } catch {
    throw new YachayError('YCH_ERR_HUB_NOT_RUNNING', `no running hub for ${dataDir} (${join(dataDir, HUB_FILE)} missing)`);
  }
}

async function withDb<T>(dataDir: string, fn: (pool: import('pg').Pool, hub: HubFile) => Promise<T>): Promise<T> {
  const hub = await readHubFile(dataDir);
  let pool;
  try { pool = await connectPool(hub.database); } catch (err) {
    throw new YachayError('YCH_ERR_HUB_NOT_RUNNING', `the hub's database does not answer (${(err as Error).message})`, { cause: err });
  }
  try { return await fn(pool, hub); } finally { await pool.end(); }
}

async function addCommand(dataDir: string, rest: string[], values: Values): Promise<number> {
  if (rest.length !== 1) throw new YachayError('YCH_ERR_USAGE', 'hub add needs exactly one recording');
  if (!values.title) throw new YachayError('YCH_ERR_USAGE', 'hub add needs --title "…"');
  const hub = await readHubFile(dataDir);
  const boss = await openBoss(hub.database, { worker: false });
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const { jobId, id } = await enqueueRecording(boss, dataDir, rest[0]!, { title: values.title, channel: values.channel ?? DEFAULT_CHANNEL, id: values.id });
    process.stderr.write(`en cola / queued: ${id} (job ${jobId})\n`);
    if (!values.wait) { process.stdout.write(`${id}\n`); return 0; }
    for (;;) {
      if (abort.signal.aborted) throw new YachayError('YCH_ERR_ABORTED', `stopped waiting; job ${jobId} stays queued`);
      const job = await boss.getJobById<unknown>(QUEUE, jobId, { includeArchive: true });
      if (job?.state === 'completed') {
        const out = job.output as IngestOutput;
        process.stderr.write(`publicada / published: ${out.id} v${out.version}, ${(out.bytes / 1e6).toFixed(2)} MB\n`);
        process.stdout.write(`${out.id}\n`);
        return 0;
      }
      if (job?.state === 'failed' || job?.state === 'cancelled' || !job) {
        // pg-boss keeps the thrown error's own fields: the worker's error code reaches this shell
        const out = job?.output as { message?: string; code?: string } | undefined;
        const msg = out?.message ?? (job ? job.state : 'the job disappeared');
        const code = out?.code && out.code in ERRORS ? out.code as ErrorCode : 'YCH_ERR_FFMPEG_FAILED';
        throw new YachayError(code, `encoding ${id} failed: ${msg}`);
      }
      await sleep(500);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await boss.stop({ graceful: false, wait: true }).catch(() => undefined);
  }
}

async function assignCommand(dataDir: string, rest: string[]): Promise<number> {
  const [school, lessonId] = rest;
  checkSchool(school);
  if (!lessonId) throw new YachayError('YCH_ERR_USAGE', 'hub assign SCHOOL LESSON');
  return withDb(dataDir, async (pool, hub) => {
    const r = await pool.query<{ id: string; title: string; channel: string; version: number; bytes: string; duration_s: number; published_at: Date }>(
      'SELECT id, title, channel, version, bytes, duration_s, published_at FROM lessons WHERE id = $1', [lessonId]);
    const l = r.rows[0];
    if (!l) throw new YachayError('YCH_ERR_USAGE', `no lesson ${lessonId} in the hub's catalog`);
    const s = await pool.query('SELECT 1 FROM schools WHERE id = $1 AND revoked_at IS NULL', [school]);
    if (!s.rowCount) throw new YachayError('YCH_ERR_USAGE', `no active school ${school} in the hub's catalog`);
    await pool.query('INSERT INTO assignments (school, lesson_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [school, lessonId]);
    const entry: CatalogEntry = {
      id: l.id, title: l.title, channel: l.channel, version: l.version, bytes: Number(l.bytes), durationS: l.duration_s,
      publishedAt: l.published_at.toISOString(), manifest: originPath.manifest(l.id),
    };
    const c = await mqtt.connectAsync(hub.broker.url, { username: hub.broker.username, password: hub.broker.password, clientId: `yachay-hub-cli-${process.pid}`, reconnectPeriod: 0, connectTimeout: 10_000 })
      .catch((err: Error) => { throw new YachayError('YCH_ERR_HUB_BROKER', `cannot reach the hub broker ${hub.broker.url}: ${err.message}`, { cause: err }); });
    try {
      await c.publishAsync(`yachay/${school}/assign/${l.id}`, JSON.stringify(entry), { qos: 1, retain: true });
    } finally {
      await c.endAsync();
    }
    process.stderr.write(`asignada / assigned: ${l.id} → ${school}\n`);
    return 0;
  });
}
