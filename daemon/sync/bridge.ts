import mqtt from 'mqtt';
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import type { Logger } from '../log.js';
import type { Service } from '../service.js';
import type { Credentials } from './credentials.js';
import type { CatalogMirror } from './mirror.js';
import type { Outbox } from './outbox.js';
import { downKind, topics } from './topics.js';
import type { DownKind } from './topics.js';

/**
 * The box's link to the hub's broker (Aedes has no outgoing bridge, and Mosquitto's bridge
 * defaults lose data): an MQTT.js client with a persistent session (clean: false, fixed client
 * id), QoS 1 both ways, a retained online/offline status with the offline one as last will.
 * Down-messages (catalog, assignments, commands) are stored and relayed into the local broker
 * before the hub gets its PUBACK; up-messages leave only from the SQLite outbox, oldest first,
 * each removed when the hub acknowledged it. Nothing relayed down is ever sent up: the outbox
 * accepts only up-topics, and the bridge subscribes only to down-topics.
 */
export interface BridgeDeps {
  creds: Credentials;
  outbox: Outbox;
  mirror: CatalogMirror;
  /** into the local broker, same topic */
  relay: (topic: string, payload: Buffer, retain: boolean) => Promise<void>;
  /** after a down-message was stored and relayed (the sync engine wakes up on it) */
  onDown?: (kind: DownKind, rest: string, payload: Buffer) => void;
  version: string;
  log: Logger;
  /** reconnect delays: full jitter over base·2^n, capped (default 1 s … 5 min) */
  backoff?: { baseMs: number; capMs: number };
  /** more down-filters (the release topic of this box's arch, issue 11 item 7) */
  extraFilters?: string[] | undefined;
  /** how long a connection attempt may take over a satellite link */
  connectTimeoutMs?: number;
}

export class BridgeService implements Service {
  readonly name = 'bridge';
  private client: MqttClient | undefined;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  /** ms of the last packet from the hub */
  lastSeen: number | undefined;
  connectedAt: number | undefined;
  /** messages received from the hub and relayed */
  relayed = 0;
  private readonly log: Logger;

  constructor(private readonly d: BridgeDeps) {
    this.log = d.log;
  }

  get connected(): boolean { return this.client?.connected === true; }

  async start(): Promise<void> {
    this.stopped = false;
    this.d.outbox.onAdd(() => { void this.drain(); });
    const { creds } = this.d;
    const status = (online: boolean): string => JSON.stringify({ online, at: Date.now(), version: this.d.version });
    const opts: IClientOptions = {
      clientId: `box-${creds.school}`,
      username: creds.mqtt.username,
      password: creds.mqtt.password,
      clean: false,
      protocolVersion: 4,
      keepalive: 60,
      // our own reconnect loop: MQTT.js retries at a fixed period, a thousand boxes in step
      reconnectPeriod: 0,
      connectTimeout: this.d.connectTimeoutMs ?? 60_000,
      will: { topic: topics.status(creds.school), payload: Buffer.from(status(false)), qos: 1, retain: true },
    };
    const client = mqtt.connect(creds.mqtt.url, opts);
    // the PUBACK goes to the hub only once the message is stored and relayed: a power cut in
    // between makes the hub send it again rather than lose it
    client.handleMessage = (packet, done) => {
      this.onMessage(packet).then(() => done(), (err: unknown) => { this.log.warn({ err, topic: packet.topic }, 'hub message not relayed'); done(err as Error); });
    };
    this.client = client;
    client.on('connect', (connack) => {
      this.attempt = 0;
      this.connectedAt = Date.now();
      this.lastSeen = Date.now();
      this.log.info({ url: creds.mqtt.url, sessionPresent: connack.sessionPresent }, 'hub broker connected');
      void this.afterConnect(connack.sessionPresent, status(true));
    });
    client.on('packetreceive', () => { this.lastSeen = Date.now(); });
    client.on('close', () => {
      this.connectedAt = undefined;
      this.scheduleReconnect();
    });
    client.on('error', (err) => this.log.warn({ err: err.message, url: creds.mqtt.url }, 'hub broker error'));
  }

  private async afterConnect(sessionPresent: boolean, online: string): Promise<void> {
    const c = this.client;
    if (!c) return;
    try {
      // the hub keeps the subscriptions of a persistent session (and queues what came meanwhile);
      // the extra ones are asked each time: a session made by an older release lacks them
      const extra = this.d.extraFilters ?? [];
      if (!sessionPresent || extra.length) {
        const filters = sessionPresent ? extra : [...this.d.creds.channels.map(topics.catalogFilter), topics.assignFilter(this.d.creds.school), topics.cmdFilter(this.d.creds.school), ...extra];
        const granted = await c.subscribeAsync(Object.fromEntries(filters.map((f) => [f, { qos: 1 as const }])));
        const refused = granted.filter((g) => g.qos === 128).map((g) => g.topic);
        if (refused.length) this.log.warn({ refused }, 'hub refused subscriptions');
      }
      await c.publishAsync(topics.status(this.d.creds.school), online, { qos: 1, retain: true });
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'hub session setup failed');
    }
    void this.drain();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) return;
    const { baseMs, capMs } = this.d.backoff ?? { baseMs: 1000, capMs: 300_000 };
    const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(this.attempt, 20));
    const delay = Math.round(Math.random() * ceiling);
    this.attempt++;
    this.log.debug({ delay, attempt: this.attempt }, 'hub broker reconnect scheduled');
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.stopped && this.client && !this.client.connected) this.client.reconnect();
    }, delay);
    this.timer.unref();
  }

  private async onMessage(packet: IPublishPacket): Promise<void> {
    const { school } = this.d.creds;
    const k = downKind(packet.topic, school);
    if (!k) return; // not ours (the hub's ACL should not have sent it): neither stored nor relayed
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    // a release is for the box itself, not for the school's LAN: kept by the updater, not relayed
    if (k.kind === 'release') { this.d.onDown?.(k.kind, k.rest, payload); return; }
    let retain = false;
    if (k.kind === 'catalog' || k.kind === 'assign') {
      if (!this.d.mirror.apply(packet.topic, k.kind, k.rest, payload)) {
        this.log.warn({ topic: packet.topic }, 'malformed catalog entry ignored');
        return;
      }
      // catalog and assignments are retained state by contract; a live delivery drops the flag
      retain = true;
    }
    await this.d.relay(packet.topic, payload, retain);
    this.relayed++;
    this.d.onDown?.(k.kind, k.rest, payload);
  }

  /** Sends the outbox in order, one message at a time, each removed only after its PUBACK. */
  drain(): Promise<void> {
    this.draining ??= this.drainLoop().finally(() => { this.draining = undefined; });
    return this.draining;
  }

  private async drainLoop(): Promise<void> {
    while (!this.stopped && this.client?.connected) {
      const rows = this.d.outbox.peek(50);
      if (rows.length === 0) return;
      for (const r of rows) {
        if (!this.client?.connected) return;
        try {
          await this.client.publishAsync(r.topic, r.payload, { qos: 1, retain: r.retain });
        } catch (err) {
          this.log.debug({ err: (err as Error).message, id: r.id }, 'outbox message not acknowledged yet');
          return;
        }
        this.d.outbox.remove(r.id);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    if (c.connected) {
      const off = JSON.stringify({ online: false, at: Date.now(), version: this.d.version });
      try { await Promise.race([c.publishAsync(topics.status(this.d.creds.school), off, { qos: 1, retain: true }), new Promise((r) => setTimeout(r, 2000).unref())]); } catch { /* the will says it */ }
    }
    await new Promise<void>((resolve) => c.end(true, {}, () => resolve()));
  }
}
