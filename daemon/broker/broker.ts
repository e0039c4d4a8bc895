import { Aedes } from 'aedes';
import type { AuthenticateError, Client, PublishPacket, Subscription } from 'aedes';
import levelPersistence from 'aedes-persistence-level';
import { Level } from 'level';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { MqttConfig } from '../config/schema.js';
import { YachayError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Service } from '../service.js';
import { canPublish, canSubscribe, validTopic } from './acl.js';
import type { Principal, Role } from './acl.js';
import { LoginLimiter } from '../users/login-limiter.js';
import { HashBusyError } from '../users/hash-gate.js';
import { MqttGate, PacketTooLargeError, packetLimitFor, CONNECT_LIMIT, RETAIN_LIMIT } from './packet-gate.js';

/** room a retained message must leave on the broker store's disk (LevelDB's log and compaction) */
const STORE_RESERVE = 256 * 1024;

/** What the broker needs from the users table (daemon/users/users.ts `Users` fits). */
export interface UserVerifier {
  verify(username: string, password: string): Promise<{ username: string; role: Role } | undefined>;
  /** the user as the database has it now (a removal or demotion ends their MQTT powers) */
  get?(username: string): { username: string; role: Role } | undefined;
}

export interface BrokerDeps {
  cfg: MqttConfig;
  /** school id, the second level of every topic */
  school: string;
  users: UserVerifier;
  /** LevelDB folder for sessions, QoS 1/2 queues and retained messages (dataPaths().broker) */
  dir: string;
  log: Logger;
  /** how long a student token lets a page connect; default 12 h (one school day) */
  studentTokenTtlMs?: number;
  /** failed logins per address, shared with HTTP login (default: 5 a minute of its own) */
  limiter?: LoginLimiter;
  /** how long a teacher's page credential lets it connect; default 10 min (it asks again on each reconnect) */
  userTokenTtlMs?: number;
}

export interface InternalPublishOptions { retain?: boolean; qos?: 0 | 1 | 2 }

/** The username a student's web page connects with; its password is a token from issueStudentToken(). */
export const STUDENT_USERNAME = 'student';

/** CONNACK return codes used here (MQTT 3.1.1 table 3.1). Aedes 1.x speaks 3.1/3.1.1 only. */
const RC_IDENTIFIER_REJECTED = 2;
const RC_SERVER_UNAVAILABLE = 3;
const RC_BAD_CREDENTIALS = 4;
const RC_NOT_AUTHORIZED = 5;

/** Tokens kept at most; the oldest go first, so a page-reload storm cannot grow memory. */
const MAX_STUDENT_TOKENS = 10_000;
/** live tokens one device (address) may hold: a few tabs and reloads */
const TOKENS_PER_DEVICE = 8;

function authError(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/** Identity that owns a client id: a reconnect by the same identity may take its session over. */
function identity(p: Principal): string {
  return p.kind === 'student' ? `student:${p.token}` : `user:${p.username}`;
}

/**
 * The school's embedded MQTT broker: Aedes with LevelDB persistence, a TCP listener for
 * devices, teachers' tools and the bridge, and a WebSocket listener for web pages. Every
 * client authenticates (users table, or a student token); acl.ts decides every publish and
 * subscribe. The box's own messages go through publish(), which skips the ACL.
 */
export class BrokerService implements Service {
  readonly name = 'broker';
  private broker: Aedes | undefined;
  private db: Level<string, string> | undefined;
  private tcp: NetServer | undefined;
  private http: HttpServer | undefined;
  private wss: WebSocketServer | undefined;
  private stopping: Promise<void> | undefined;
  private readonly principals = new WeakMap<Client, Principal>();
  /** client id → identity of the connected client holding it */
  private readonly owners = new Map<string, { client: Client; who: string }>();
  /** student token → expiry (ms since epoch) */
  private readonly tokens = new Map<string, number>();
  /** student token → address of the device it was issued to */
  private readonly tokenFrom = new Map<string, string>();
  /** a logged-in teacher's or admin's page credential → whose, with the role it was issued for */
  private readonly userTokens = new Map<string, { username: string; role: Role; expires: number }>();
  /**
   * client id → identity that made its stored session, kept with the sessions: an offline
   * session's queued messages go only to the user who left them, not whoever takes the id
   */
  private sessionOwners: { get(k: string): Promise<string | undefined>; put(k: string, v: string): Promise<void> } | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private storeOk = true;
  private readonly log: Logger;
  private readonly tokenTtlMs: number;
  private readonly userTokenTtlMs: number;
  private readonly limiter: LoginLimiter;

  constructor(private readonly deps: BrokerDeps) {
    this.log = deps.log.child({ svc: 'broker' });
    this.tokenTtlMs = deps.studentTokenTtlMs ?? 12 * 3600_000;
    this.userTokenTtlMs = deps.userTokenTtlMs ?? 10 * 60_000;
    this.limiter = deps.limiter ?? new LoginLimiter(5, 60_000);
  }

  /** Actual ports after start() (useful when the config asked for 0, an ephemeral port). */
  get ports(): { tcp: number; ws: number } {
    const tcp = this.tcp?.address() as AddressInfo | null | undefined;
    const ws = this.http?.address() as AddressInfo | null | undefined;
    if (!tcp || !ws) throw new Error('broker ports read before start() or after stop()');
    return { tcp: tcp.port, ws: ws.port };
  }

  get healthTopic(): string {
    return `yachay/${this.deps.school}/health`;
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.broker) return;
    this.stopping = undefined;
    try {
      await this.open(signal);
    } catch (err) {
      await this.stop(); // releases whatever opened: ports, the LevelDB lock
      throw err;
    }
  }

  /** whether the broker store's disk can take `bytes` more (LevelDB writes a log record, then compacts) */
  private async roomFor(bytes: number): Promise<boolean> {
    try {
      const s = await statfs(this.deps.dir);
      return s.bavail * s.bsize >= bytes + STORE_RESERVE;
    } catch {
      return true; // unknown: let the store itself answer (and the wrapper log its failure)
    }
  }

  private async open(signal?: AbortSignal): Promise<void> {
    const { cfg, dir } = this.deps;
    mkdirSync(dir, { recursive: true });
    this.db = new Level<string, string>(dir);
    try {
      await this.db.open();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code === 'LEVEL_LOCKED') {
        throw new YachayError('YCH_ERR_IO', `cannot open broker store ${dir}: another yachay is running on this data dir (${cause.message})`, { cause: err });
      }
      // a damaged store (a garbage CURRENT or manifest after a power cut) holds only MQTT
      // sessions and retained messages: saying so tells the technician it is safe to clear
      throw new YachayError('YCH_ERR_IO', `broker store ${dir} is damaged: ${cause?.message ?? (err as Error).message}. ` +
        `It holds only MQTT sessions and retained messages (no lessons, no users): stop the box, move ${dir} aside and start again`, { cause: err });
    }
    signal?.throwIfAborted();
    this.sessionOwners = this.db.sublevel<string, string>('yachay-session-owners', { keyEncoding: 'utf8', valueEncoding: 'utf8' });

    const persistence = levelPersistence(this.db);
    // Aedes acknowledges a QoS 1 publish before it stores it: a store that fails afterwards
    // would lose the message in silence. The room is checked before (authorizePublish) and a
    // failure that still happens is at least said.
    const storeRetained = persistence.storeRetained.bind(persistence);
    persistence.storeRetained = (packet) => storeRetained(packet).catch((err: unknown) => {
      this.log.error({ err, topic: packet.topic, code: 'YCH_ERR_DISK_FULL' }, 'retained message not stored (broker store refused the write)');
      throw err;
    });
    this.broker = await Aedes.createBroker({
      persistence,
      authenticate: (client, username, password, done) => {
        this.authenticate(client, username, password).then(
          (p) => {
            this.principals.set(client, p);
            if (client.conn instanceof MqttGate) client.conn.limit = packetLimitFor(p);
            done(null, true);
          },
          (err: AuthenticateError) => done(err, false),
        );
      },
      authorizePublish: (client, packet, done) => {
        const p = client ? this.currentPrincipal(client) : undefined;
        // client is null for a will left by a session from before a restart: we no longer
        // know who wrote it, so it is not published.
        if (p && canPublish(p, packet.topic, this.deps.school)) {
          // a retained message is stored and sent to every page that opens: keep it small
          if (packet.retain && packet.payload.length > RETAIN_LIMIT) {
            this.log.warn({ client: client?.id, topic: packet.topic, bytes: packet.payload.length }, 'large retained message refused');
            return done(new Error(`retained messages are limited to ${RETAIN_LIMIT} bytes`));
          }
          if (packet.retain && packet.payload.length > 0) {
            // refused before the PUBACK, so the sender keeps it and sends it again later
            void this.roomFor(packet.payload.length).then((room) => {
              if (room) return done(null);
              this.log.error({ client: client?.id, topic: packet.topic, bytes: packet.payload.length, code: 'YCH_ERR_DISK_FULL' },
                'disco lleno / disk full: retained message refused, not acknowledged (free disk space; the sender retries)');
              done(new Error('disk full: retained message not stored'));
            });
            return;
          }
          return done(null);
        }
        // MQTT 3.1.1 has no way to tell a publisher "no" [MQTT-3.3.5-2]: the server either
        // acks and drops, or closes the connection. Aedes closes it, and the message is gone.
        this.log.warn({ client: client?.id, who: p && identity(p), topic: packet.topic }, 'publish refused');
        done(new Error(`not authorized to publish to ${packet.topic}`));
      },
      authorizeSubscribe: (client, sub: Subscription, done) => {
        const p = this.currentPrincipal(client);
        if (p && canSubscribe(p, sub.topic, this.deps.school)) return done(null, sub);
        this.log.info({ client: client.id, who: p && identity(p), filter: sub.topic }, 'subscribe refused');
        // null → SUBACK return code 0x80 (failure) for this filter [MQTT-3.9.3]; others stand
        done(null, null);
      },
    });
    // 'client' fires when Aedes registers the id, before CONNACK goes out
    this.broker.on('client', (client) => {
      const p = this.principals.get(client);
      if (p) this.owners.set(client.id, { client, who: identity(p) });
    });
    // a user removed or demoted by `yachay users` (another process) is cut off within seconds
    let tick = 0;
    this.sweeper = setInterval(() => {
      for (const { client } of this.owners.values()) if (!client.closed) this.currentPrincipal(client);
      if (++tick % 3 === 0) void this.checkStore();
    }, 5_000);
    this.sweeper.unref();
    this.broker.on('clientDisconnect', (client) => {
      if (this.owners.get(client.id)?.client === client) this.owners.delete(client.id);
    });
    this.broker.on('clientError', (client, err) => {
      this.log.debug({ client: client.id, err: err.message }, 'client error');
    });
    this.broker.on('connectionError', (client, err) => {
      this.log.debug({ client: client.id, err: err.message }, 'connection error');
    });

    const broker = this.broker;
    this.tcp = createNetServer((socket) => broker.handle(this.gate(socket)));
    await listen(this.tcp, cfg.port, cfg.host, 'mqtt.port');

    // MQTT over WebSocket for the web page [MQTT-6.0.0]: binary frames, one stream per socket.
    this.http = createHttpServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' }).end('MQTT over WebSocket only\n');
    });
    this.wss = new WebSocketServer({ server: this.http });
    this.wss.on('connection', (ws, req) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', (err) => this.log.debug({ err: err.message }, 'websocket stream error'));
      broker.handle(this.gate(stream), req);
    });
    await listen(this.http, cfg.wsPort, cfg.host, 'mqtt.wsPort');

    await this.publish(this.healthTopic, JSON.stringify({ status: 'up', at: new Date().toISOString() }),
      { retain: true, qos: 1 });
    this.log.info({ ...this.ports, host: cfg.host, dir }, 'broker listening');
  }

  private gate(conn: Duplex): MqttGate {
    const g = new MqttGate(conn, CONNECT_LIMIT);
    g.on('error', (err) => { if (err instanceof PacketTooLargeError) this.log.warn({ err: err.message }, 'MQTT connection closed'); });
    return g;
  }

  private async authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<Principal> {
    // No anonymous clients: without credentials the client is "not authorized" (5), as
    // Mosquitto answers with allow_anonymous false.
    if (username === undefined || username === '' || password === undefined) {
      throw authError(RC_NOT_AUTHORIZED, 'username and password required');
    }
    let p: Principal;
    const byToken = username === STUDENT_USERNAME ? undefined : this.userTokenOf(username, password);
    if (username === STUDENT_USERNAME) {
      const token = password.toString('utf8');
      const expires = this.tokens.get(token);
      if (expires === undefined || expires < Date.now()) {
        this.tokens.delete(token);
        throw authError(RC_BAD_CREDENTIALS, 'unknown or expired student token');
      }
      // A persistent session would outlive the token and could pick up a stored session
      // under someone else's client id [MQTT-3.1.2-4]; a page reconnects with a clean one.
      if (!client.clean) throw authError(RC_NOT_AUTHORIZED, 'students connect with a clean session');
      p = { kind: 'student', token };
    } else if (byToken) {
      // a page credential is 24 random bytes: no hash to compute, nothing to guess
      p = byToken;
    } else {
      // the same limit as the HTTP login, checked before any hashing (login-limiter.ts)
      const from = remoteAddress(client);
      const wait = this.limiter.retryAfter(from);
      if (wait > 0) {
        this.log.info({ username, from, wait }, 'login refused: too many failures from this address');
        throw authError(RC_BAD_CREDENTIALS, `too many failed logins: try again in ${wait} s`);
      }
      const withdraw = this.limiter.reserve(from);
      let user;
      try {
        user = await this.deps.users.verify(username, password.toString('utf8'));
      } catch (err) {
        withdraw();
        if (err instanceof HashBusyError) throw authError(RC_SERVER_UNAVAILABLE, err.message);
        this.log.error({ err }, 'user lookup failed');
        throw authError(RC_SERVER_UNAVAILABLE, 'user lookup failed');
      }
      if (!user) {
        this.log.info({ username, client: client.id, from }, 'bad credentials');
        throw authError(RC_BAD_CREDENTIALS, 'bad user name or password');
      }
      withdraw();
      p = { kind: 'user', username: user.username, role: user.role };
    }
    // Session takeover [MQTT-3.1.4-2] is for the same client coming back; a different
    // identity reusing a connected client id would kick it off and read its session.
    const owner = this.owners.get(client.id);
    if (owner && owner.who !== identity(p) && !owner.client.closed) {
      throw authError(RC_IDENTIFIER_REJECTED, `client id ${client.id} is in use by another user`);
    }
    if (p.kind === 'user') {
      const stored = await this.sessionOwners?.get(client.id).catch(() => undefined);
      if (stored !== undefined && stored !== identity(p)) {
        throw authError(RC_IDENTIFIER_REJECTED, `client id ${client.id} holds another user's session`);
      }
      if (!client.clean && stored === undefined) await this.sessionOwners?.put(client.id, identity(p));
    }
    return p;
  }

  /**
   * The client's principal as the users table has it now. A removed user is disconnected; a
   * demoted one keeps the connection with the new role's rights (an admin made teacher can no
   * longer publish commands).
   */
  private currentPrincipal(client: Client): Principal | undefined {
    const p = this.principals.get(client);
    if (!p || p.kind !== 'user' || !this.deps.users.get) return p;
    const now = this.deps.users.get(p.username);
    if (!now) {
      this.log.info({ username: p.username, client: client.id }, 'user removed: connection closed');
      this.principals.delete(client);
      client.close();
      return undefined;
    }
    if (now.role === p.role) return p;
    const q: Principal = { kind: 'user', username: now.username, role: now.role };
    this.principals.set(client, q);
    if (client.conn instanceof MqttGate) client.conn.limit = packetLimitFor(q);
    this.log.info({ username: p.username, from: p.role, to: now.role }, 'user role changed: rights follow');
    return q;
  }

  /**
   * A token for one student page: the page connects with username `student` and the token as
   * password, and may then only read (acl.ts). Kept in memory: a restart ends them all.
   */
  issueStudentToken(from?: string): string {
    const now = Date.now();
    for (const [t, exp] of this.tokens) if (exp < now) { this.tokens.delete(t); this.tokenFrom.delete(t); }
    // one device keeps a few (tabs, reloads): a device minting thousands only replaces its own,
    // it cannot evict the class's
    if (from !== undefined) {
      const mine = [...this.tokenFrom].filter(([, ip]) => ip === from).map(([t]) => t);
      for (const t of mine.slice(0, Math.max(0, mine.length - (TOKENS_PER_DEVICE - 1)))) { this.tokens.delete(t); this.tokenFrom.delete(t); }
    }
    while (this.tokens.size >= MAX_STUDENT_TOKENS) {
      const oldest = this.tokens.keys().next().value;
      if (oldest === undefined) break;
      this.tokens.delete(oldest);
      this.tokenFrom.delete(oldest);
    }
    const token = randomBytes(24).toString('base64url');
    this.tokens.set(token, now + this.tokenTtlMs);
    if (from !== undefined) this.tokenFrom.set(token, from);
    return token;
  }

  /**
   * A page credential for a logged-in teacher or admin (GET /api/session), so the page never
   * keeps the password for MQTT reconnects (issue 10 item 13). It connects as that user with
   * that user's ACL, for `userTokenTtlMs`, and only while the user exists with the role it had
   * when the credential was issued: a removal or demotion ends it at once.
   */
  issueUserToken(user: { username: string; role: Role }): { username: string; password: string; expiresAt: number } {
    const now = Date.now();
    for (const [t, u] of this.userTokens) if (u.expires < now) this.userTokens.delete(t);
    // a user keeps a few live ones (tabs, reconnects); more replace their own oldest
    const mine = [...this.userTokens].filter(([, u]) => u.username === user.username).map(([t]) => t);
    for (const t of mine.slice(0, Math.max(0, mine.length - (TOKENS_PER_DEVICE - 1)))) this.userTokens.delete(t);
    while (this.userTokens.size >= MAX_STUDENT_TOKENS) {
      const oldest = this.userTokens.keys().next().value;
      if (oldest === undefined) break;
      this.userTokens.delete(oldest);
    }
    const password = randomBytes(24).toString('base64url');
    const expiresAt = now + this.userTokenTtlMs;
    this.userTokens.set(password, { username: user.username, role: user.role, expires: expiresAt });
    return { username: user.username, password, expiresAt };
  }

  /** the principal a live page credential stands for, checked against the users table now */
  private userTokenOf(username: string, password: Buffer): Principal | undefined {
    const token = password.toString('utf8');
    const t = this.userTokens.get(token);
    if (!t || t.username !== username) return undefined;
    const now = this.deps.users.get ? this.deps.users.get(username) : { username, role: t.role };
    if (t.expires < Date.now() || !now || now.role !== t.role) {
      this.userTokens.delete(token);
      return undefined;
    }
    return { kind: 'user', username: now.username, role: now.role };
  }

  /** Ends a token early (e.g. the page logged out). Connected clients keep their connection. */
  revokeStudentToken(token: string): void {
    this.tokens.delete(token);
    this.tokenFrom.delete(token);
  }

  /**
   * The box's own messages (health, job progress, class pushes from the HTTP API). Trusted
   * code: no ACL. Resolves once the message is stored (if retained) and handed to subscribers.
   */
  async publish(topic: string, payload: string | Buffer, opts: InternalPublishOptions = {}): Promise<void> {
    const broker = this.broker;
    if (!broker || broker.closed) throw new Error(`broker not running: cannot publish to ${topic}`);
    if (!validTopic(topic)) throw new Error(`invalid topic name ${JSON.stringify(topic)}`);
    const packet: PublishPacket = {
      cmd: 'publish',
      topic,
      payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
      qos: opts.qos ?? 0,
      retain: opts.retain ?? false,
      dup: false,
    };
    await new Promise<void>((resolve, reject) => broker.publish(packet, (err) => (err ? reject(err) : resolve())));
  }

  stop(): Promise<void> {
    this.stopping ??= this.close();
    return this.stopping;
  }

  private async close(): Promise<void> {
    const { broker, tcp, http, wss, db } = this;
    clearInterval(this.sweeper);
    // last word first, while the broker still stores retained messages
    if (broker && !broker.closed && tcp?.listening) {
      try {
        await this.publish(this.healthTopic, JSON.stringify({ status: 'down', at: new Date().toISOString() }),
          { retain: true, qos: 1 });
      } catch (err) {
        this.log.warn({ err }, 'could not publish health down');
      }
    }
    // stop accepting; open connections end with broker.close() below
    const closedTcp = tcp?.listening ? new Promise<void>((r) => tcp.close(() => r())) : undefined;
    const closedHttp = http?.listening ? new Promise<void>((r) => http.close(() => r())) : undefined;
    if (broker) await new Promise<void>((r) => broker.close(() => r()));
    if (wss) {
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
    http?.closeAllConnections();
    await Promise.all([closedTcp, closedHttp]);
    if (db && db.status !== 'closed') await db.close();
    this.broker = undefined;
    this.tcp = undefined;
    this.http = undefined;
    this.wss = undefined;
    this.db = undefined;
    this.owners.clear();
    if (broker) this.log.info('broker stopped');
  }

  healthy(): boolean {
    return !!this.broker && !this.broker.closed && !!this.tcp?.listening && this.storeOk;
  }

  /**
   * Every login and retained message goes through the store: when it stops answering, MQTT
   * accepts no one although the port is open. A small write and read every 15 s tells /health.
   */
  async checkStore(): Promise<void> {
    try {
      const at = String(Date.now());
      await this.sessionOwners?.put('\u0000probe', at);
      if ((await this.sessionOwners?.get('\u0000probe')) !== at) throw new Error('read back a different value');
      if (!this.storeOk) this.log.info('broker store answers again');
      this.storeOk = true;
    } catch (err) {
      if (this.storeOk) this.log.error({ err }, 'broker store does not answer: MQTT logins fail; /health reports it');
      this.storeOk = false;
    }
  }
}

/** the peer's address: the WebSocket's HTTP request, or the TCP socket behind the gate */
function remoteAddress(client: Client): string {
  const req = client.req as { socket?: { remoteAddress?: string } } | undefined;
  return req?.socket?.remoteAddress ?? (client.conn as { remoteAddress?: string } | undefined)?.remoteAddress ?? 'unknown';
}

function listen(server: NetServer | HttpServer, port: number, host: string, key: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(new YachayError('YCH_ERR_CONFIG',
        `${key}: cannot listen on ${host}:${port}: ${err.code ?? err.message}` +
        (err.code === 'EADDRINUSE' ? ' (another program uses this port: choose another or stop it)' : ''),
        { cause: err }));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}
