import { chmod, mkdir, readFile, rm } from 'node:fs/promises';
import { YachayError } from '../errors.js';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type PgBoss from 'pg-boss';
import type pg from 'pg';
import type { HubRole, OptimizeConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { loadOrCreateHubKey } from '../pkg/sign.js';
import { writeFileAtomic } from '../util/atomic.js';
import { EmbeddedPostgres } from './postgres.js';
import { EmbeddedMosquitto } from './mosquitto.js';
import { AuthSync } from './auth-sync.js';
import { authFiles, HUB_USER } from './broker-auth.js';
import { connectPool, migrate } from './db.js';
import { HubMqtt } from './hub-mqtt.js';
import { IngestWorker, openBoss, queueDepth } from './ingest.js';
import { hubMetrics } from './fleet.js';
import { buildHubHttp } from './http.js';
import { isRoot } from '../media/child.js';
import { loadOrCreateSecrets } from './secrets.js';

/**
 * `yachay hub start`: parts started in dependency order (database, broker, the hub's MQTT
 * client, the encode worker, HTTP) and stopped in reverse. Without --database / --broker the
 * hub runs its own PostgreSQL and Mosquitto under the data dir.
 */
export interface HubOptions {
  dataDir: string;
  httpPort: number;
  mqttPort: number;
  /** address the broker and HTTP listen on (127.0.0.1 unless given) */
  bind: string;
  database?: string | undefined;
  broker?: string | undefined;
  publicMqttUrl?: string | undefined;
  /** the origin folder (default <data>/origin); hubs sharing one database share it too (NFS, object storage mount) */
  origin?: string | undefined;
  optimize: Readonly<OptimizeConfig>;
  /** replicas in Kubernetes split the duties (YACHAY_HUB_ROLE); default all */
  role?: HubRole | undefined;
}

export interface HubFile {
  pid: number;
  database: string;
  broker: { url: string; username: string; password: string };
  http: string;
  startedAt: string;
  /** the origin folder (blobs/, manifests/): `hub release` stores bundles there */
  origin?: string;
}

export const HUB_FILE = 'hub.json';

export class Hub {
  private pg: EmbeddedPostgres | undefined;
  private mosquitto: EmbeddedMosquitto | undefined;
  private pool: pg.Pool | undefined;
  private auth: AuthSync | undefined;
  private mqtt: HubMqtt | undefined;
  private boss: PgBoss | undefined;
  private worker: IngestWorker | undefined;
  private http: FastifyInstance | undefined;
  private stopping: Promise<void> | undefined;
  private wroteFile = false;
  /** resolves with a message when PostgreSQL or Mosquitto died under the hub */
  readonly crashed: Promise<string>;
  private crash!: (why: string) => void;
  url = '';

  constructor(private readonly o: HubOptions, private readonly log: Logger) {
    this.crashed = new Promise((r) => { this.crash = r; });
  }

  get dataDir(): string { return resolve(this.o.dataDir); }

  async start(): Promise<void> {
    const role = this.o.role ?? 'all';
    // a worker is one of many around a shared hub: a private PostgreSQL would be a hub of its own
    if (role === 'worker' && (!this.o.database || !this.o.broker)) {
      throw new YachayError('YCH_ERR_USAGE', 'a hub worker (YACHAY_HUB_ROLE=worker) encodes for a shared hub: give --database URL and --broker URL');
    }
    const dir = this.dataDir;
    await mkdir(dir, { recursive: true, mode: 0o711 });
    // the private servers run as their own users (as root): they must be able to pass through
    if (isRoot()) await chmod(dir, 0o711);
    await this.refuseSecond(dir);
    const secrets = await loadOrCreateSecrets(dir);
    const key = await loadOrCreateHubKey(dir);
    const origin = resolve(this.o.origin ?? join(dir, 'origin'));

    let dbUrl = this.o.database;
    if (!dbUrl) {
      this.pg = new EmbeddedPostgres(dir, secrets.pgPassword, this.log.child({ svc: 'postgres' }));
      dbUrl = await this.pg.start();
      void this.pg.crashed.then((why) => { if (!this.pg!.stopRequested) this.crash(why); });
    }
    this.pool = await connectPool(dbUrl);
    await migrate(this.pool, this.log);

    let brokerUrl = this.o.broker;
    let mqttPassword = secrets.mqttPassword;
    if (brokerUrl) {
      // an outside broker: its `hub` account's password comes in the URL (mqtt://hub:PASSWORD@host:port)
      const u = new URL(brokerUrl);
      if (u.password) mqttPassword = decodeURIComponent(u.password);
      u.username = ''; u.password = '';
      brokerUrl = u.toString().replace(/\/$/, '');
    }
    const files = authFiles(join(dir, 'mosquitto'));
    if (!brokerUrl) {
      this.mosquitto = new EmbeddedMosquitto(dir, { port: this.o.mqttPort, bind: this.o.bind }, this.log.child({ svc: 'mosquitto' }));
      await this.mosquitto.prepare();
    } else {
      await mkdir(join(dir, 'mosquitto'), { recursive: true });
    }
    const m = this.mosquitto;
    // with an outside broker the files are still rendered here, for its operator to point it at;
    // a worker enrolls no box, so it leaves the broker's accounts to the api replicas
    if (role !== 'worker') {
      this.auth = new AuthSync(this.pool, dbUrl, files, mqttPassword, async () => { await m?.reload(); }, this.log.child({ svc: 'broker-auth' }), m?.owner);
      await this.auth.render();
    }
    if (m) {
      await m.start();
      brokerUrl = m.url;
      void m.crashed.then((why) => { if (!m.stopRequested) this.crash(why); });
    }
    await this.auth?.listen();
    await this.auth?.apply();

    // one stable session per hub data dir: two hubs on one broker must not take each other's session
    const clientId = `yachay-hub-${hostname()}-${createHash('sha256').update(dir).digest('hex').slice(0, 8)}`;
    this.mqtt = new HubMqtt(brokerUrl!, mqttPassword, this.pool, this.log.child({ svc: 'hub-mqtt' }), clientId);
    await this.mqtt.start();
    this.log.info({ clientId }, 'hub MQTT client connected');

    this.boss = await openBoss(dbUrl, { worker: true });
    this.log.info('job queue ready');
    const mqtt = this.mqtt;
    // api replicas leave encodes to the workers KEDA scales on the queue depth
    if (role !== 'api') {
      this.worker = new IngestWorker({
        boss: this.boss, pool: this.pool, dataDir: dir, originRoot: origin, privateKey: key.privateKey,
        cfg: this.o.optimize, log: this.log.child({ svc: 'ingest' }),
        async announce(entry, schools) {
          await mqtt.publishCatalog(entry);
          for (const s of schools) await mqtt.publishAssign(s, entry);
        },
      });
      await this.worker.start();
    }

    const boss = this.boss;
    const auth = this.auth;
    this.http = await buildHubHttp({
      pool: this.pool, originRoot: origin, hubKeyPem: key.publicPem, mqttPort: this.o.mqttPort,
      publicMqttUrl: this.o.publicMqttUrl, metrics: hubMetrics(this.pool, () => queueDepth(boss)),
      applyAuth: async () => { await auth?.apply(); }, log: this.log, publicRoutes: role !== 'worker',
      health: () => ({ broker: mqtt.connected, hubRole: role }),
    });
    await this.http.listen({ port: this.o.httpPort, host: this.o.bind });
    this.url = `http://${this.o.bind === '0.0.0.0' ? '127.0.0.1' : this.o.bind}:${this.o.httpPort}`;

    const file: HubFile = {
      pid: process.pid, database: dbUrl, broker: { url: brokerUrl!, username: HUB_USER, password: mqttPassword },
      http: this.url, startedAt: new Date().toISOString(), origin,
    };
    await writeFileAtomic(join(dir, HUB_FILE), JSON.stringify(file, null, 1) + '\n', { mode: 0o600 });
    this.wroteFile = true;
  }

  /** a second hub on one data dir would fight the first over its PostgreSQL and Mosquitto */
  private async refuseSecond(dir: string): Promise<void> {
    let pid = 0;
    try { pid = (JSON.parse(await readFile(join(dir, HUB_FILE), 'utf8')) as HubFile).pid; } catch { return; }
    if (!pid || pid === process.pid) return;
    try { process.kill(pid, 0); } catch { return; } // a hub.json left by a killed hub
    throw new YachayError('YCH_ERR_USAGE', `a hub already runs on ${dir} (pid ${pid}): stop it first, or give another --data-dir`);
  }

  /** reverse order of start; idempotent, safe after a failed start */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const step = async (what: string, fn: (() => Promise<unknown>) | undefined): Promise<void> => {
        if (!fn) return;
        try { await fn(); } catch (err) { this.log.error({ err, part: what }, 'stop failed'); }
      };
      // only ours: a second hub refused at start must not take the first one's file away
      if (this.wroteFile) await rm(join(this.dataDir, HUB_FILE), { force: true });
      await step('http', this.http && (() => this.http!.close()));
      await step('ingest', this.worker && (() => this.worker!.stop()));
      await step('queue', this.boss && (() => this.boss!.stop({ graceful: true, wait: true, timeout: 10_000 })));
      await step('hub-mqtt', this.mqtt && (() => this.mqtt!.stop()));
      await step('broker-auth', this.auth && (() => this.auth!.stop()));
      await step('pool', this.pool && (() => this.pool!.end()));
      await step('mosquitto', this.mosquitto && (() => this.mosquitto!.stop()));
      await step('postgres', this.pg && (() => this.pg!.stop()));
    })();
    return this.stopping;
  }
}
