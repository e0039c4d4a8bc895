import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import type { HttpConfig } from '../../config/schema.js';
import type { Role, User, Users } from '../../users/users.js';
import type { SetupToken } from '../../users/setup-token.js';
import { YachayError } from '../../errors.js';
import { withoutPaths } from '../../jobs/public-event.js';
import { LoginLimiter, SESSION_COOKIE, Sessions } from './common.js';
import { RUNNING_VERSION } from '../../update/version.js';
import { HashBusyError } from '../../users/hash-gate.js';

/** A published or pending lesson as the catalog gives it (daemon/catalog/lessons.ts). */
export interface Lesson {
  id: string;
  title: string;
  status: string;
  durationS?: number | null | undefined;
  path?: string | null | undefined;
  renditions?: Array<{ id: string; bytes: number; kbps: number; playlist?: string }> | null | undefined;
  /** parts published under their quality floor (daemon/catalog/lessons.ts LessonMiss) */
  misses?: Array<{ kind: string; start: number; end: number; value: number; floor: number; ceiling?: number | undefined }> | null | undefined;
  origin?: string | undefined;
  /** why its optimize job failed (or why a re-encode did), for the teacher */
  error?: string | null | undefined;
  channel?: string | null | undefined;
  version?: number | null | undefined;
  createdAt: number;
  updatedAt: number;
}

/** The small slice of the catalog the HTTP server reads. */
export interface LessonSource {
  list(opts?: { q?: string }): Lesson[];
  get(id: string): Lesson | undefined;
  /** the optimizer's report of a ready lesson (floors measured): catalog/lessons.ts report() */
  report?(id: string): unknown;
}

export interface Metrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  bytes: Counter<'rendition'>;
}

/** One registry per server (not prom-client's global), so two servers in one test process do not collide. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'yachay_' });
  return {
    registry,
    requests: new Counter({
      name: 'yachay_http_requests_total', help: 'HTTP requests answered, by route pattern and status',
      labelNames: ['method', 'route', 'status'] as const, registers: [registry],
    }),
    // per rendition, not per lesson: lessons are unbounded, byte_counts in SQLite has that detail
    bytes: new Counter({
      name: 'yachay_media_bytes_sent_total', help: 'media bytes handed to the network, by rendition',
      labelNames: ['rendition'] as const, registers: [registry],
    }),
  };
}

const MB = 1e6;

/**
 * What one lesson costs a student: the lowest video rendition with the Opus audio (what the
 * player's "ahorro de datos" mode plays), or for an audio-only lesson its smallest audio.
 */
export function dataSaverMB(renditions: Lesson['renditions']): number | null {
  if (!renditions?.length) return null;
  const audio = renditions.filter((r) => r.id.startsWith('a-'));
  // v0 is the data-saver rendition by construction (plan.ts); on a short clip a higher one can
  // measure fewer kb/s, so the id decides, not the measurement
  const video = renditions.filter((r) => !r.id.startsWith('a-')).sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  const lowAudio = audio.find((r) => r.id === 'a-opus') ?? [...audio].sort((a, b) => a.kbps - b.kbps)[0];
  const bytes = video[0] ? video[0].bytes + (lowAudio?.bytes ?? 0) : lowAudio?.bytes ?? 0;
  return Math.round((bytes / MB) * 100) / 100;
}

export function lessonView(l: Lesson): Record<string, unknown> {
  return {
    id: l.id,
    title: l.title,
    status: l.status,
    // why its job failed (or why a re-encode did), for the teacher; without the box's folders
    error: l.error ? withoutPaths(l.error) : null,
    durationS: l.durationS ?? null,
    playlist: l.status === 'ready' ? `/media/${encodeURIComponent(l.id)}/master.m3u8` : null,
    renditions: (l.renditions ?? []).map((r) => ({ id: r.id, kbps: r.kbps, bytes: r.bytes })),
    // where the published package is under its floor: the teacher page offers a re-encode
    misses: (l.misses ?? []).map((m) => ({ kind: m.kind, start: m.start, end: m.end, value: m.value, floor: m.floor, ceiling: m.ceiling ?? null })),
    dataSaverMB: dataSaverMB(l.renditions),
    // 'local' (a teacher's upload) or where a signed package came from: 'hub', 'import', 'peer'
    origin: l.origin ?? 'local',
    channel: l.channel ?? null,
    version: l.version ?? null,
    createdAt: l.createdAt,
    updatedAt: l.updatedAt,
  };
}

export function isLoopback(ip: string): boolean {
  return ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.');
}

export interface ApiOptions {
  cfg: HttpConfig;
  lessons: LessonSource;
  users: Users;
  sessions: Sessions;
  limiter: LoginLimiter;
  metrics: Metrics;
  health: () => Record<string, boolean>;
  sessionTtlMs: number;
  /** while the box has no admin: the one-time token that creates it */
  setup?: SetupToken;
  /**
   * queues an optimize job for a published lesson with a quality boost (1..MAX_BOOST); undefined
   * when the box no longer has the lesson's recording. Absent: the route answers 503 (a server
   * without a job queue)
   */
  reencode?: ((lessonId: string, boost: number, by: string) => { jobId: number } | undefined) | undefined;
}

/** the most a teacher can ask for at once (optimize/boost.ts MAX_BOOST) */
const MAX_REENCODE_BOOST = 3;

export async function apiRoutes(app: FastifyInstance, opts: ApiOptions): Promise<void> {
  const { cfg, lessons, sessions } = opts;
  const readerGuard = (req: FastifyRequest): void => { if (cfg.studentsNeedLogin) sessions.require(req); };

  app.get('/health', async (_req, reply) => {
    const services = opts.health();
    const ok = Object.values(services).every(Boolean);
    // the version lets the update guard tell the new release from anything else on the port
    return reply.code(ok ? 200 : 503).header('cache-control', 'no-store').send({ ok, services, version: RUNNING_VERSION });
  });

  // login counts and traffic are for the box's own Prometheus (loopback) and its operators
  app.get('/metrics', async (req, reply) => {
    if (!isLoopback(req.ip)) sessions.require(req, ['admin', 'device']);
    const body = await opts.metrics.registry.metrics();
    return reply.type(opts.metrics.registry.contentType).header('cache-control', 'no-store').send(body);
  });

  app.get('/api/lessons', {
    schema: { querystring: { type: 'object', properties: { q: { type: 'string', maxLength: 200 } } } },
  }, async (req) => {
    readerGuard(req);
    const q = (req.query as { q?: string }).q?.trim();
    return { lessons: lessons.list(q ? { q } : {}).map(lessonView) };
  });

  // GET /api/lessons/:id (with the failure, floors and data use) is in lessons.ts

  /**
   * "Volver a codificar con más calidad": a teacher or admin queues the lesson again with more
   * bits where it missed. The published package keeps playing until the new one replaces it.
   */
  app.post('/api/lessons/:id/reencode', {
    schema: {
      params: { type: 'object', properties: { id: { type: 'string', maxLength: 128 } } },
      body: { type: ['object', 'null'], additionalProperties: false, properties: { boost: { type: 'integer', minimum: 1, maximum: MAX_REENCODE_BOOST } } },
    },
  }, async (req, reply) => {
    const by = sessions.require(req, ['teacher', 'admin']);
    const l = lessons.get((req.params as { id: string }).id);
    if (!l) throw new YachayError('YCH_HTTP_NOT_FOUND', 'no such lesson');
    if (l.status !== 'ready' || !l.path) {
      throw new YachayError('YCH_HTTP_NOT_READY', 'the lesson is still being prepared (or failed): wait for it, or upload it again');
    }
    if (!opts.reencode) throw new YachayError('YCH_HTTP_NO_QUEUE', 'this server has no job queue: run `yachay start`');
    const boost = (req.body as { boost?: number } | null)?.boost ?? 1;
    const queued = opts.reencode(l.id, boost, by.username);
    if (!queued) throw new YachayError('YCH_HTTP_NO_SOURCE', 'the recording of this lesson is no longer on the box: upload it again');
    const { jobId } = queued;
    req.log.info({ lessonId: l.id, boost, jobId, by: by.username }, 're-encode with more quality queued');
    return reply.code(202).send({ lessonId: l.id, jobId, boost });
  });

  app.post('/api/login', {
    schema: {
      body: {
        type: 'object', required: ['username', 'password'], additionalProperties: false,
        properties: { username: { type: 'string', minLength: 1, maxLength: 64 }, password: { type: 'string', minLength: 1, maxLength: 1024 }, bearer: { type: 'boolean' } },
      },
    },
  }, async (req, reply) => {
    refuseWhileLimited(req);
    const { username, password, bearer } = req.body as { username: string; password: string; bearer?: boolean };
    // counted as failed from now until the hash says otherwise (login-limiter.ts)
    const withdraw = opts.limiter.reserve(req.ip);
    let user: User | undefined;
    try {
      user = await opts.users.verify(username, password);
    } catch (err) {
      if (!(err instanceof HashBusyError)) throw err;
      withdraw();
      throw new YachayError('YCH_HTTP_BUSY', 'the box is checking many passwords at once: try again in a few seconds', { headers: { 'retry-after': '5' } });
    }
    if (user) withdraw();
    else {
      req.log.info({ username, ip: req.ip }, 'login failed');
      throw new YachayError('YCH_HTTP_BAD_LOGIN', 'wrong username or password');
    }
    req.log.info({ username, role: user.role }, 'login');
    return startSession(reply, user, bearer === true);
  });

  /**
   * The session rides the HttpOnly cookie only: a token in the answer would sit in page memory
   * where any injected script reads it (issue 10 item 13). Scripts and tests that send
   * `Authorization: Bearer` ask for it with `"bearer": true`.
   */
  const startSession = (reply: FastifyReply, user: User, bearer: boolean): Record<string, unknown> => {
    const { token, expires } = sessions.create(user);
    // no Secure flag: the school LAN is plain HTTP; SameSite=Strict keeps other sites from
    // riding the cookie (CSRF), HttpOnly keeps page scripts from reading it
    reply.header('set-cookie', `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(opts.sessionTtlMs / 1000)}`);
    return { ...(bearer ? { token } : {}), username: user.username, role: user.role, expiresAt: expires };
  };

  const refuseWhileLimited = (req: FastifyRequest): void => {
    const wait = opts.limiter.retryAfter(req.ip);
    if (wait > 0) {
      throw new YachayError('YCH_HTTP_TOO_MANY_LOGINS', `too many failed attempts from this device: try again in ${wait} s`, { headers: { 'retry-after': String(wait) } });
    }
  };

  const account = {
    username: { type: 'string', minLength: 1, maxLength: 64 },
    password: { type: 'string', minLength: 1, maxLength: 1024 },
  } as const;
  const setupBody = {
    type: 'object', required: ['token', 'username', 'password'], additionalProperties: false,
    properties: { ...account, token: { type: 'string', minLength: 1, maxLength: 256 }, bearer: { type: 'boolean' } },
  } as const;
  const userBody = {
    type: 'object', required: ['username', 'password'], additionalProperties: false,
    properties: { ...account, role: { type: 'string', enum: ['teacher', 'admin'] } },
  } as const;

  /** Whether the first admin is still to be created (the web app then shows the setup form). */
  app.get('/api/setup', async (_req, reply) => reply.header('cache-control', 'no-store').send({ needed: opts.setup?.needed ?? false }));

  /** The one-time setup token creates the first admin and logs them in. */
  app.post('/api/setup', { schema: { body: setupBody } }, async (req, reply) => {
    refuseWhileLimited(req);
    const { username, password, token, bearer } = req.body as { username: string; password: string; token: string; bearer?: boolean };
    const setup = opts.setup;
    if (!setup?.needed) throw new YachayError('YCH_HTTP_SETUP_DONE', 'this box already has an admin: log in, or ask them for an account');
    // a wrong token counts as a failed login: guessing it is limited like guessing a password
    const giveBack = setup.claim(token);
    if (!giveBack) {
      opts.limiter.fail(req.ip);
      req.log.warn({ ip: req.ip }, 'setup token refused');
      throw new YachayError('YCH_HTTP_BAD_SETUP_TOKEN', 'wrong setup token: copy it from the box console or the file setup-token in its data folder');
    }
    let user: User;
    try {
      user = await addAccount(username, password, 'admin');
    } catch (err) {
      giveBack();
      throw err;
    }
    await setup.consume();
    req.log.info({ username }, 'first admin created with the setup token');
    return reply.code(201).send(startSession(reply, user, bearer === true));
  });

  /** Admins give teachers (or other admins) their accounts from the web page. */
  app.post('/api/users', { schema: { body: userBody } }, async (req, reply) => {
    const by = sessions.require(req, ['admin']);
    const { username, password, role } = req.body as { username: string; password: string; role?: 'teacher' | 'admin' };
    if (opts.users.get(username)) throw new YachayError('YCH_HTTP_USER_EXISTS', `there is already an account named ${username}`);
    const user = await addAccount(username, password, role ?? 'teacher');
    req.log.info({ username, role: user.role, by: by.username }, 'account created');
    return reply.code(201).send({ username: user.username, role: user.role, createdAt: user.createdAt });
  });

  app.get('/api/users', async (req) => {
    sessions.require(req, ['admin']);
    return { users: opts.users.list().filter((u) => u.role !== 'device') };
  });

  const addAccount = async (username: string, password: string, role: Role): Promise<User> => {
    try {
      return await opts.users.add(username, password, role);
    } catch (err) {
      // the rules on names and password length, as the technician should read them
      if (err instanceof YachayError && err.code === 'YCH_ERR_USAGE') throw new YachayError('YCH_HTTP_BAD_ACCOUNT', err.message);
      throw err;
    }
  };

  app.post('/api/logout', async (req, reply) => {
    sessions.delete(Sessions.tokenOf(req));
    return reply.code(204)
      .header('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`)
      .send();
  });
}
