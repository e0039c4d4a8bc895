import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The students' and teachers' web page: a few static files (http/player/), two browser bundles
 * taken from node_modules (hls.js, mqtt), and GET /api/session, which tells the page the
 * school id and where the MQTT-over-WebSocket listener is, so a lesson a teacher pushes to a
 * class opens on every phone in the room.
 *
 * Everything is read into memory once at registration (about 0.9 MB, gzip copies included): a
 * Pi then serves the page without touching the SD card, and a missing bundle fails the start,
 * not the first student.
 */

export interface PlayerOptions {
  /** school id, as in MQTT topics yachay/<school>/… */
  school: string;
  /** port of the broker's WebSocket listener; absent: the page does not subscribe */
  mqttWsPort?: number | undefined;
  /** a fresh read-only token for one page's MQTT connection (BrokerService.issueStudentToken) */
  studentToken?: ((from: string) => string) | undefined;
  /** the box has the hub sync's routes (/api/sync, /api/catalog/hub): the teacher page shows them */
  hubSync?: boolean | undefined;
  /**
   * who the request's session cookie is, and for a teacher or admin a short-lived MQTT
   * credential (BrokerService.issueUserToken): the page never keeps a password for reconnects
   */
  user?: ((req: FastifyRequest) => { username: string; role: string; mqtt: { username: string; password: string; expiresAt: number } | null } | undefined) | undefined;
}

interface Asset { body: Buffer; gz: Buffer | undefined; type: string; etag: string }

const require = createRequire(import.meta.url);
const HERE = (name: string): string => fileURLToPath(new URL(`./player/${name}`, import.meta.url));

/** the page's ES modules (player/js/), served as they are: the browser loads them, no build step */
export function pageModules(): string[] {
  return readdirSync(HERE('js')).filter((f) => f.endsWith('.js')).sort().map((f) => `/js/${f}`);
}

/** [url, file, content type]; vendor files resolved through the packages' own export maps */
function sources(): Array<[string, string, string]> {
  const js = 'text/javascript; charset=utf-8';
  return [
    ['/', HERE('index.html'), 'text/html; charset=utf-8'],
    ...pageModules().map((url): [string, string, string] => [url, HERE(url.slice(1)), js]),
    ['/style.css', HERE('style.css'), 'text/css; charset=utf-8'],
    ['/sw.js', HERE('sw.js'), js],
    // UMD build: defines window.Hls; loaded with a classic <script>
    ['/vendor/hls.js', require.resolve('hls.js/dist/hls.min.js'), js],
    // ES module build: `import mqtt from '/vendor/mqtt.js'`
    ['/vendor/mqtt.js', require.resolve('mqtt/dist/mqtt.esm'), js],
  ];
}

async function load(file: string, type: string): Promise<Asset> {
  const body = await readFile(file);
  const etag = `"${createHash('sha1').update(body).digest('base64url').slice(0, 22)}"`;
  // below ~1 KB gzip saves nothing worth a header
  const gz = body.length > 1024 ? gzipSync(body, { level: 9 }) : undefined;
  return { body, gz, type, etag };
}

/**
 * CSP for every player response: only this box, except MSE's blob: media URLs (hls.js feeds the
 * <video> through a MediaSource object URL) and the broker's WebSocket, which is another port
 * and so not 'self'. No inline script or style anywhere in the page.
 */
export function contentSecurityPolicy(wsOrigin: string | null): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self' blob:",
    `connect-src 'self'${wsOrigin ? ` ${wsOrigin}` : ''}`,
    "worker-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** ws://<the host the page was loaded from>:<port>, or null without a WebSocket listener */
function wsOrigin(req: FastifyRequest, port: number | undefined): string | null {
  if (!port) return null;
  const host = req.hostname || '127.0.0.1';
  // a host with a colon and no brackets is a bare IPv6 address
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `ws://${h}:${port}`;
}

export async function registerPlayer(app: FastifyInstance, opts: PlayerOptions): Promise<void> {
  const assets = new Map<string, Asset>();
  for (const [url, file, type] of sources()) assets.set(url, await load(file, type));

  const security = (req: FastifyRequest, reply: FastifyReply): FastifyReply => reply
    .header('content-security-policy', contentSecurityPolicy(wsOrigin(req, opts.mqttWsPort)))
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer');

  for (const [url, asset] of assets) {
    app.route({
      method: ['GET', 'HEAD'],
      url,
      handler: async (req, reply) => {
        security(req, reply)
          .type(asset.type)
          // revalidate every time (a 304 costs a few bytes), so an update reaches phones at once
          .header('cache-control', 'no-cache')
          .header('etag', asset.etag)
          .header('vary', 'accept-encoding');
        if (url === '/sw.js') reply.header('service-worker-allowed', '/');
        if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send();
        const gzip = asset.gz && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
        if (gzip) reply.header('content-encoding', 'gzip');
        return reply.send(gzip ? asset.gz : asset.body);
      },
    });
  }

  app.get('/api/session', async (req, reply) => {
    security(req, reply).header('cache-control', 'no-store');
    const user = opts.user?.(req);
    return {
      user: user ? { username: user.username, role: user.role } : null,
      mqtt: user?.mqtt ?? null,
      school: opts.school,
      mqttWs: wsOrigin(req, opts.mqttWsPort),
      studentToken: opts.mqttWsPort && opts.studentToken ? opts.studentToken(req.ip) : null,
      hubSync: Boolean(opts.hubSync),
    };
  });
}
