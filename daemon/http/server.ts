import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import Fastify, { LogController } from 'fastify';
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { HttpConfig } from '../config/schema.js';
import type { Db } from '../db/db.js';
import type { Service } from '../service.js';
import type { Users } from '../users/users.js';
import type { SetupToken } from '../users/setup-token.js';
import { ByteCounter, mediaKey, mediaRoutes, recheckCached, storeRealpath } from './media.js';
import { FileCache, MediaFastPath } from './media-cache.js';
import { apiRoutes, createMetrics, type ApiOptions, type LessonSource } from './routes/api.js';
import { LoginLimiter, Sessions } from './routes/common.js';
import { YachayError } from '../errors.js';
import type { Registry } from 'prom-client';
import { uploadRoutes, type UploadedFile } from './routes/uploads.js';
import { manageRoutes, type LessonManager } from './routes/lessons.js';

export type { Lesson, LessonSource } from './routes/api.js';
export type { UploadedFile } from './routes/uploads.js';

export interface AppDeps {
  cfg: HttpConfig;
  log: Logger;
  db: Db;
  /** the content store: <store>/<lessonId>/master.m3u8 */
  store: string;
  lessons: LessonSource;
  users: Users;
  /** every service's health, for /health */
  health: () => Record<string, boolean>;
  onUpload?: (file: UploadedFile) => Promise<{ lessonId: string }>;
  /** uploads in progress and finished sources; default: beside the store (see paths.ts) */
  uploads?: string;
  sources?: string;
  /** byte accounting flush interval; default 5 s */
  flushMs?: number;
  /** login session lifetime; default 12 h (a school day) */
  sessionTtlMs?: number;
  /** clock for sessions and the login limiter (tests move time) */
  now?: () => number;
  /** while the box has no admin: the one-time token that creates it */
  setup?: SetupToken;
  /** adds the box's own gauges to /metrics (daemon/telemetry/metrics.ts) */
  metrics?: (registry: Registry) => void;
  /** how long a request other than an upload may take to send its body (default 30 s) */
  bodyTimeoutMs?: number;
  /** an upload must bring at least this many bytes per bodyTimeoutMs, else it is cut (default 16 KiB) */
  uploadMinBytes?: number;
  /** failed logins per address, shared with the broker (default: one of its own) */
  limiter?: LoginLimiter;
  /** queues a re-encode with more quality of a published lesson (POST /api/lessons/:id/reencode) */
  reencode?: ApiOptions['reencode'];
  /** delete, rename and retry lessons (routes/lessons.ts); absent: those routes answer 503 */
  manage?: LessonManager;
  /** more routes registered by the composition root (the web player) */
  plugins?: Array<(app: FastifyInstance, ctx: { sessions: Sessions }) => Promise<void>>;
}

/** Largest request head accepted; above it Node answers 431 before Fastify sees the request. */
export const MAX_HEADER_BYTES = 16 * 1024;
/**
 * An idle socket is dropped after 2 min; Node's headersTimeout (60 s) stops slow-header clients.
 * Node's requestTimeout is off (a 2 GB upload over school Wi-Fi takes long): bodies are timed
 * per route below, a whole body for most, a minimum pace for uploads.
 */
const CONNECTION_TIMEOUT_MS = 120_000;
const KEEP_ALIVE_MS = 5_000;
/** JSON bodies (login); uploads stream past this with their own limit. */
const JSON_BODY_LIMIT = 64 * 1024;
/** a request other than an upload sends its body (at most JSON_BODY_LIMIT) within this */
const BODY_TIMEOUT_MS = 30_000;
/**
 * An upload may take hours but must keep moving: at least this much per BODY_TIMEOUT_MS
 * (about 4 kbit/s, below the worst school link). A stalled one is cut and resumes (HEAD, PATCH).
 */
const UPLOAD_MIN_BYTES = 16 * 1024;
const UPLOAD_ROUTES: ReadonlySet<string> = new Set(['/api/uploads', '/api/uploads/:id']);

/**
 * The LAN server's Fastify instance with every route, not listening: tests call inject() on it,
 * HttpService listens. Closing it flushes the byte accounting.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now;
  const cache = new FileCache();
  let closing = false;
  // built below, once metrics and the byte counter exist; requests only arrive after listen()
  let fast: MediaFastPath | undefined;
  const app = Fastify({
    // one HTTP parser for every request (Node's): segments already in memory are answered from
    // its request event before Fastify routes, everything else goes on to Fastify. The server's
    // limits and timeouts are set here because Fastify leaves a factory's server alone.
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: true }, (req, res) => {
        // Node refuses a request with no Host; RFC 9112 §3.2 also refuses two (a proxy and
        // this server could disagree on which site is meant)
        if ((req.headersDistinct.host?.length ?? 0) > 1) {
          res.writeHead(400, { 'content-type': 'application/json', connection: 'close' })
            .end('{"error":"YCH_HTTP_BAD_REQUEST","message":"more than one Host header"}');
          return;
        }
        // a request with a body goes through Fastify, whose hook times the body; answered here,
        // Node would go on reading a trickled body for as long as it kept coming
        const cl = req.headers['content-length'];
        const body = (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined;
        if (body || !fast?.serve(req, res)) handler(req, res);
      });
      server.keepAliveTimeout = KEEP_ALIVE_MS;
      server.requestTimeout = 0;
      server.setTimeout(CONNECTION_TIMEOUT_MS);
      return server;
    },
    loggerInstance: deps.log,
    // one log line per segment would fill a Pi's SD card: requests are counted in /metrics
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    bodyLimit: JSON_BODY_LIMIT,
    routerOptions: { maxParamLength: 256 },
  }) as unknown as FastifyInstance;

  const metrics = createMetrics();
  deps.metrics?.(metrics.registry);
  const sessionTtlMs = deps.sessionTtlMs ?? 12 * 3600_000;
  const sessions = new Sessions(sessionTtlMs, now, (username) => deps.users.get(username));
  const limiter = deps.limiter ?? new LoginLimiter(deps.cfg.loginAttemptsPerMinute, 60_000, now);
  const counter = new ByteCounter(deps.db, deps.log, (rendition, bytes) => metrics.bytes.inc({ rendition }, bytes));
  counter.start(deps.flushMs ?? 5_000);
  const sweeper = setInterval(() => { sessions.prune(); limiter.prune(); }, 60_000);
  sweeper.unref();
  app.addHook('onClose', async () => {
    clearInterval(sweeper);
    counter.stop();
  });

  // a request that drains during close must not leave its socket kept alive, or close() would
  // wait keepAliveTimeout for it: answers sent from now on say Connection: close, and sockets
  // whose download finishes are closed as soon as they fall idle
  app.addHook('preClose', async () => {
    closing = true;
    const sweep = setInterval(() => { app.server.closeIdleConnections(); }, 100);
    sweep.unref();
    app.server.once('close', () => clearInterval(sweep));
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    if (closing) reply.header('connection', 'close');
    return payload;
  });

  // SameSite cookies guard uploads; Bearer tokens and other browsers' quirks do not: a request
  // that changes something and says it comes from another site is refused before any route
  app.addHook('onRequest', async (req) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return;
    const origin = req.headers.origin;
    const site = req.headers['sec-fetch-site'];
    let foreign = site === 'cross-site';
    if (origin !== undefined) {
      try { foreign ||= new URL(origin).host !== req.headers.host; } catch { foreign = true; }
    }
    if (foreign) throw new YachayError('YCH_HTTP_CROSS_ORIGIN', 'this request comes from another site: open the box\'s own page to do this');
  });

  // Node's requestTimeout is one number for the whole server and uploads need hours, so it is
  // off; every other request must deliver its (small) body within BODY_TIMEOUT_MS, or a
  // client trickling a login body byte by byte would hold its socket and memory for good
  const bodyTimeoutMs = deps.bodyTimeoutMs ?? BODY_TIMEOUT_MS;
  const uploadMinBytes = deps.uploadMinBytes ?? UPLOAD_MIN_BYTES;
  app.addHook('onRequest', async (req) => {
    const raw = req.raw;
    if (raw.complete || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined)) return;
    if (UPLOAD_ROUTES.has(req.routeOptions.url ?? '')) {
      // counted on the socket, not the stream: a 'data' listener would take bytes from the route;
      // a refused upload's body is read and dropped by Node, so it is held to the same pace
      const sock = raw.socket;
      let last = sock.bytesRead;
      const pace = setInterval(() => {
        if (raw.complete) { clearInterval(pace); return; }
        if (sock.bytesRead - last < uploadMinBytes) { clearInterval(pace); sock.destroy(); return; }
        last = sock.bytesRead;
      }, bodyTimeoutMs);
      pace.unref();
      raw.once('end', () => clearInterval(pace));
      raw.once('close', () => clearInterval(pace));
      return;
    }
    const timer = setTimeout(() => { if (!raw.complete) raw.socket.destroy(); }, bodyTimeoutMs);
    timer.unref();
    raw.once('end', () => clearTimeout(timer));
    raw.once('close', () => clearTimeout(timer));
  });

  // the page's session answer carries a student MQTT token: behind the same login as the lessons
  if (deps.cfg.studentsNeedLogin) {
    app.addHook('onRequest', async (req) => { if (req.url.split('?')[0] === '/api/session') sessions.require(req); });
  }

  app.addHook('onResponse', async (req, reply) => {
    metrics.requests.inc({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
    req.log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  app.setErrorHandler((err: FastifyError | YachayError, req, reply) => {
    // a catalogue error with its own HTTP status is the answer; one without (status 500) is a
    // fault of the box: logged, and its message is not shown to the page
    if (err instanceof YachayError && (err.status < 500 || err.code.startsWith('YCH_HTTP_'))) {
      return reply.headers(err.headers).code(err.status).send({ error: err.code, message: err.message, hint: err.hint });
    }
    if (err instanceof YachayError) {
      req.log.error({ err, url: req.url }, 'request failed');
      return reply.code(500).send({ error: 'YCH_HTTP_INTERNAL', message: 'internal error, see the box log' });
    }
    const status = err.statusCode ?? 500;
    if (status < 500) {
      // Fastify's own 4xx: validation, body too large, bad JSON…
      return reply.code(status).send({ error: err.code ?? 'YCH_HTTP_BAD_REQUEST', message: err.message });
    }
    req.log.error({ err, url: req.url }, 'request failed');
    return reply.code(500).send({ error: 'YCH_HTTP_INTERNAL', message: 'internal error, see the box log' });
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: 'YCH_HTTP_NOT_FOUND', message: 'not found' }));

  await app.register(apiRoutes, {
    cfg: deps.cfg, lessons: deps.lessons, users: deps.users, sessions, limiter, metrics, health: deps.health, sessionTtlMs,
    setup: deps.setup, reencode: deps.reencode,
  });
  await app.register(manageRoutes, { lessons: deps.lessons, sessions, manage: deps.manage, studentsNeedLogin: deps.cfg.studentsNeedLogin });
  const storeRoot = storeRealpath(deps.store);
  await app.register(mediaRoutes, {
    storeRoot,
    counter,
    cache,
    guard: deps.cfg.studentsNeedLogin ? (req) => { sessions.require(req); } : undefined,
  });
  const mediaRequests = {
    GET: new Map<number, { inc: () => void }>(), HEAD: new Map<number, { inc: () => void }>(),
  };
  fast = new MediaFastPath({
    cache,
    keyOf: mediaKey,
    // a login check needs Fastify's request; a closing server answers 503 from Fastify
    enabled: () => !closing && !deps.cfg.studentsNeedLogin,
    count: (e, bytes) => counter.add(e.lessonId, e.rendition, bytes),
    recheck: (key, e) => void recheckCached(storeRoot, key, e, cache),
    onAnswered: (method, status) => {
      const byStatus = mediaRequests[method as 'GET' | 'HEAD'];
      let c = byStatus.get(status);
      if (!c) { c = metrics.requests.labels({ method, route: '/media/*', status: String(status) }); byStatus.set(status, c); }
      c.inc();
    },
  });
  const root = dirname(deps.store);
  await app.register(uploadRoutes, {
    cfg: deps.cfg,
    uploads: deps.uploads ?? join(root, 'uploads'),
    sources: deps.sources ?? join(root, 'sources'),
    sessions,
    onUpload: deps.onUpload,
  });
  for (const plugin of deps.plugins ?? []) await plugin(app, { sessions });
  return app;
}

/**
 * The LAN stream server as a Service: start() listens on cfg.host:cfg.port (port 0 picks a free
 * one, see port), stop() answers 503 to new requests while in-flight ones drain, then flushes
 * the byte counts. Stopped first by App, before the services it reads from.
 */
export class HttpService implements Service {
  readonly name = 'http';
  private app: FastifyInstance | undefined;
  private listening = false;

  constructor(private readonly deps: AppDeps) {}

  async start(signal?: AbortSignal): Promise<void> {
    if (this.app) return;
    this.app = await buildApp(this.deps);
    if (signal?.aborted) return;
    try {
      await this.app.listen({ host: this.deps.cfg.host, port: this.deps.cfg.port });
    } catch (err) {
      // a port taken or not allowed is the configuration's to fix: exit 78, not a restart loop
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
        const app = this.app; this.app = undefined; await app.close();
        throw new YachayError('YCH_ERR_CONFIG', `http.port: cannot listen on ${this.deps.cfg.host}:${this.deps.cfg.port}: ${code}` +
          (code === 'EADDRINUSE' ? ' (another program uses this port: choose another or stop it)' : ''), { cause: err });
      }
      throw err;
    }
    this.listening = true;
    this.deps.log.info({ url: this.url }, 'LAN server listening');
  }

  async stop(): Promise<void> {
    const app = this.app;
    if (!app) return;
    this.listening = false;
    this.app = undefined;
    await app.close();
  }

  healthy(): boolean {
    return this.listening;
  }

  address(): AddressInfo | undefined {
    const a = this.app?.server.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  get port(): number {
    return this.address()?.port ?? 0;
  }

  /**
   * The addresses phones on the school network use: every non-internal IPv4 address when the
   * server listens on all of them, else its own url.
   */
  get lanUrls(): string[] {
    const a = this.address();
    if (!a) return [];
    if (a.address !== '0.0.0.0' && a.address !== '::') return [this.url];
    const urls = Object.values(networkInterfaces()).flatMap((list) => list ?? [])
      .filter((i) => i.family === 'IPv4' && !i.internal)
      .map((i) => `http://${i.address}:${a.port}`);
    return urls.length ? urls : [this.url];
  }

  /** http://host:port, with a loopback host when listening on every address */
  get url(): string {
    const a = this.address();
    if (!a) return '';
    const host = a.address === '0.0.0.0' || a.address === '::' ? '127.0.0.1' : a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }
}
