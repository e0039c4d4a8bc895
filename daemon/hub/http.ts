import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import type pg from 'pg';
import type { Logger } from '../log.js';
import { isYachayError } from '../errors.js';
import { AttemptLimiter, EnrollRefused, exchangeCode } from './enroll.js';
import { fleet } from './fleet.js';
import type { HubMetrics } from './fleet.js';
import { FLEET_PAGE } from './fleet-page.js';

/**
 * The hub's HTTP: health, enrollment, the fleet view and metrics, and the origin
 * (`/manifests/*`, `/blobs/*`, public and static: nginx or a CDN can serve the same folder).
 * Node sends a Date header on every response: a box without a battery clock reads the time there.
 */
export interface HubHttpDeps {
  pool: pg.Pool;
  originRoot: string;
  hubKeyPem: string;
  mqttPort: number;
  /** the broker URL given to boxes; default mqtt://<the host the box reached>:<mqttPort> */
  publicMqttUrl?: string | undefined;
  metrics: HubMetrics;
  /** renders and reloads the broker's accounts; the answer waits for it */
  applyAuth(): Promise<void>;
  health(): Record<string, unknown>;
  log: Logger;
  enrollPerMinute?: number;
  /** false on a worker replica: /health and /metrics only, no enrollment, fleet or origin */
  publicRoutes?: boolean;
}

function hostOnly(host: string): string {
  // "[::1]:8080" → "[::1]", "hub.example:8080" → "hub.example"
  return host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
}

export async function buildHubHttp(d: HubHttpDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({ // one line per request would drown the hub's log: warnings and errors only
    loggerInstance: d.log.child({ svc: 'hub-http' }, { level: 'warn' }) as FastifyBaseLogger, bodyLimit: 16 * 1024, trustProxy: false });
  const limiter = new AttemptLimiter(d.enrollPerMinute ?? 10, 60_000);

  app.get('/health', async (_req, reply) => {
    let database = true;
    try { await d.pool.query('SELECT 1'); } catch { database = false; }
    return reply.code(database ? 200 : 503).send({ ok: database, role: 'hub', database, ...d.health() });
  });

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', d.metrics.registry.contentType);
    return d.metrics.registry.metrics();
  });
  if (d.publicRoutes === false) { setErrorHandler(app, d.log); return app; }

  app.post('/api/enroll', async (req, reply) => {
    if (!limiter.allow(req.ip)) {
      d.metrics.enrollFailures.inc({ code: 'rate' });
      return reply.code(429).header('retry-after', '60').send({ code: 'YCH_ERR_ENROLL_CODE', message: 'demasiados intentos, espere un minuto / too many attempts, wait a minute' });
    }
    const body = (req.body ?? {}) as { code?: unknown; hostname?: unknown; version?: unknown };
    const str = (x: unknown, max: number): string | undefined => (typeof x === 'string' && x.length <= max ? x : undefined);
    try {
      const g = await exchangeCode(d.pool, str(body.code, 64) ?? '', { hostname: str(body.hostname, 128), version: str(body.version, 64) });
      await d.applyAuth();
      const host = hostOnly(req.headers.host ?? '127.0.0.1');
      d.log.info({ school: g.school, hostname: body.hostname }, 'box enrolled');
      return {
        school: g.school, name: g.name, channels: g.channels,
        mqtt: { url: d.publicMqttUrl ?? `mqtt://${host}:${d.mqttPort}`, username: g.username, password: g.password },
        hubKey: d.hubKeyPem,
        origin: `${req.protocol}://${req.headers.host ?? host}/`,
      };
    } catch (err) {
      if (err instanceof EnrollRefused) {
        d.metrics.enrollFailures.inc({ code: err.code });
        return reply.code(err.status).send({ code: err.code, message: err.message });
      }
      throw err;
    }
  });

  app.get('/api/fleet', async () => fleet(d.pool));

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(FLEET_PAGE));

  // the origin: only these two folders, no listing, no dotfiles; Range, ETag and Content-Length from @fastify/send
  for (const sub of ['manifests', 'blobs']) {
    await mkdir(join(d.originRoot, sub), { recursive: true });
    await app.register(fastifyStatic, {
      root: join(d.originRoot, sub), prefix: `/${sub}/`, decorateReply: false, index: false, list: false,
      dotfiles: 'deny', acceptRanges: true, etag: true, lastModified: true, cacheControl: true, maxAge: sub === 'blobs' ? '365d' : 0,
      immutable: sub === 'blobs',
    });
  }

  setErrorHandler(app, d.log);
  return app;
}

function setErrorHandler(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err, _req, reply) => {
    if (isYachayError(err)) {
      if (err.status >= 500) log.error({ err }, 'hub request failed');
      return reply.code(err.status).send({ code: err.code, message: err.message });
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) log.error({ err }, 'hub request failed');
    return reply.code(status).send({ code: status >= 500 ? 'YCH_ERR_IO' : 'YCH_ERR_USAGE', message: (err as Error).message });
  });
}
