import { hostname } from 'node:os';
import mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import type pg from 'pg';
import type { Logger } from '../log.js';
import { YachayError } from '../errors.js';
import { HUB_USER } from './broker-auth.js';

/**
 * The hub's own MQTT client (user `hub`): reads what boxes send up (status, telemetry, sync
 * reports and acks, teachers' requests) into the catalog, and publishes the down-topics.
 * A persistent session (clean off, stable client id), so what boxes said while the hub
 * restarted is delivered when it is back.
 */
export interface CatalogEntry {
  id: string; title: string; channel: string; version: number; bytes: number; durationS: number;
  publishedAt: string; manifest: string;
}

export const UP_TOPICS = ['yachay/+/status', 'yachay/+/telemetry', 'yachay/+/sync/#', 'yachay/+/request/#', 'yachay/+/update'];
const TELEMETRY_KEPT = 2000;

const num = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);

function parse(payload: Buffer): Record<string, unknown> | undefined {
  if (!payload.length) return undefined;
  try {
    const v = JSON.parse(payload.toString('utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : undefined;
  } catch { return undefined; }
}

export class HubMqtt {
  private client: MqttClient | undefined;
  /** resolves when the messages received so far are written (tests and shutdown) */
  private chain: Promise<void> = Promise.resolve();
  readonly seen = { messages: 0, dropped: 0 };

  constructor(private readonly url: string, private readonly password: string, private readonly pool: pg.Pool, private readonly log: Logger, private readonly clientId = `yachay-hub-${hostname()}`) {}

  async start(): Promise<void> {
    try {
      this.client = await mqtt.connectAsync(this.url, {
        username: HUB_USER, password: this.password, clientId: this.clientId, clean: false,
        reconnectPeriod: 2000, connectTimeout: 10_000, protocolVersion: 4,
      });
    } catch (err) {
      throw new YachayError('YCH_ERR_HUB_BROKER', `the hub's MQTT client cannot connect to ${this.url}: ${(err as Error).message}`, { cause: err });
    }
    this.client.on('error', (err) => this.log.warn({ err: err.message }, 'hub MQTT client error'));
    this.client.on('message', (topic, payload) => {
      this.chain = this.chain.then(() => this.handle(topic, payload)).catch((err: unknown) => {
        this.seen.dropped++;
        this.log.warn({ err, topic }, 'box message not recorded');
      });
    });
    await this.client.subscribeAsync(UP_TOPICS.map((t) => t), { qos: 1 });
  }

  get connected(): boolean { return this.client?.connected ?? false; }

  flushed(): Promise<void> { return this.chain; }

  async publishCatalog(e: CatalogEntry): Promise<void> {
    await this.publish(`yachay/catalog/${e.channel}/${e.id}`, JSON.stringify(e), true);
  }

  async publishAssign(school: string, e: CatalogEntry): Promise<void> {
    await this.publish(`yachay/${school}/assign/${e.id}`, JSON.stringify(e), true);
  }

  async publish(topic: string, payload: string, retain: boolean): Promise<void> {
    if (!this.client) throw new YachayError('YCH_ERR_HUB_BROKER', 'the hub MQTT client is not started');
    await this.client.publishAsync(topic, payload, { qos: 1, retain });
  }

  private async handle(topic: string, payload: Buffer): Promise<void> {
    this.seen.messages++;
    const [root, school, kind, sub, id] = topic.split('/');
    if (root !== 'yachay' || !school || school === 'catalog') return;
    const m = parse(payload);
    const q = (sql: string, args: unknown[]): Promise<unknown> => this.pool.query(sql, args);
    switch (kind) {
      case 'status':
        if (!m) return; // a cleared retained status
        await q('UPDATE boxes SET online = $2, last_seen = now(), version = COALESCE($3, version) WHERE school = $1',
          [school, m.online === true, typeof m.version === 'string' ? m.version : null]);
        return;
      case 'telemetry': {
        if (!m) return;
        const r = await this.pool.query(
          `UPDATE boxes SET last_seen = now(), online = true, version = COALESCE($2, version), disk_free_bytes = $3, temp_c = $4,
             lessons_synced = $5, pending = $6, wan_bytes_last_night = $7, errors = $8 WHERE school = $1`,
          [school, typeof m.version === 'string' ? m.version : null, num(m.diskFreeBytes), num(m.tempC), num(m.lessons), num(m.pending),
            num(m.wanBytesLastNight), m.errors === undefined ? null : JSON.stringify(m.errors)]);
        if (!r.rowCount) return;
        await q('INSERT INTO telemetry (school, payload) VALUES ($1, $2)', [school, m]);
        // bounded: a box talking for years keeps only its recent history
        await q(`DELETE FROM telemetry WHERE school = $1 AND id < (SELECT id FROM telemetry WHERE school = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)`, [school, TELEMETRY_KEPT]);
        return;
      }
      case 'sync':
        if (!m) return;
        await q('UPDATE boxes SET last_seen = now() WHERE school = $1', [school]);
        if (sub === 'ack' && id) {
          await q('UPDATE assignments SET acked_version = $3, acked_at = now() WHERE school = $1 AND lesson_id = $2', [school, id, num(m.version)]);
        }
        await q('INSERT INTO sync_reports (school, kind, lesson_id, payload) SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM schools WHERE id = $1)',
          [school, sub ?? 'report', id ?? null, m]);
        return;
      case 'update':
        // switching, updated, rolled-back, refused (daemon/update/state.ts): kept with the sync reports
        if (!m) return;
        await q('INSERT INTO sync_reports (school, kind, lesson_id, payload) SELECT $1, $2, NULL, $3 WHERE EXISTS (SELECT 1 FROM schools WHERE id = $1)',
          [school, 'update', m]);
        if (m.outcome === 'updated' || m.outcome === 'rolled-back') {
          await q('UPDATE boxes SET last_seen = now(), version = $2 WHERE school = $1', [school, m.outcome === 'updated' ? String(m.to) : String(m.from)]);
        }
        return;
      case 'request':
        if (!sub) return;
        await q('INSERT INTO requests (school, lesson_id, requested_by) SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM schools WHERE id = $1)',
          [school, sub, typeof m?.by === 'string' ? m.by : null]);
        return;
      default:
    }
  }

  async stop(): Promise<void> {
    await this.chain.catch(() => undefined);
    await this.client?.endAsync().catch(() => undefined);
    this.client = undefined;
  }
}
