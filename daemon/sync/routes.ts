import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Lessons } from '../catalog/lessons.js';
import { YachayError } from '../errors.js';
import type { Sessions } from '../http/routes/common.js';
import { topics } from './topics.js';
import type { SyncAgent } from './agent.js';

/**
 * The sync's HTTP face on the school LAN: its state (the teacher page's progress), the admin's
 * "sync now", the hub's catalog as last seen with a "Pedir / Request" per lesson, and the box's
 * own origin, read-only, so another box on the LAN can use it as its origin (sync.origin).
 */
export interface SyncRoutesOptions {
  agent: SyncAgent;
  lessons: Lessons;
  originRoot: string;
  studentsNeedLogin: boolean;
}

const SHA = /^[0-9a-f]{64}$/;
const MANIFEST = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}\.json(\.sig)?$/;

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a); const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** a static file with Range (a peer's fetchBlob resumes like from the hub) */
async function sendFile(req: FastifyRequest, reply: FastifyReply, file: string, type: string): Promise<FastifyReply> {
  const s = await stat(file).catch(() => undefined);
  if (!s?.isFile()) throw new YachayError('YCH_HTTP_NOT_FOUND', 'no such file in this box\'s origin');
  let start = 0; let end = s.size - 1;
  reply.header('accept-ranges', 'bytes').header('etag', `"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}"`).type(type);
  const m = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
  if (m) {
    start = Number(m[1]); end = m[2] ? Math.min(Number(m[2]), end) : end;
    if (start >= s.size || start > end) return reply.code(416).header('content-range', `bytes */${s.size}`).send();
    reply.code(206).header('content-range', `bytes ${start}-${end}/${s.size}`);
  }
  reply.header('content-length', end - start + 1);
  return reply.send(createReadStream(file, { start, end }));
}

export function syncRoutes(o: SyncRoutesOptions) {
  return async (app: FastifyInstance, ctx: { sessions: Sessions }): Promise<void> => {
    const { agent, lessons } = o;
    const { sessions } = ctx;
    const reader = (req: FastifyRequest): void => { if (o.studentsNeedLogin) sessions.require(req); };

    app.get('/api/sync', async (req, reply) => {
      reader(req);
      return reply.header('cache-control', 'no-store').send(agent.status());
    });

    // "Sincronizar ahora / Sync now": an admin, or `yachay sync now` on the box itself (it reads
    // the token from DIR/sync/control.json, which only the box's user can read)
    app.post('/api/sync/now', async (req, reply) => {
      const token = req.headers['x-yachay-control'];
      if (!(typeof token === 'string' && sameToken(token, agent.controlToken))) sessions.require(req, ['admin']);
      if (!agent.engine) throw new YachayError('YCH_HTTP_NOT_ENROLLED', 'this box is not enrolled with a hub yet: `yachay start --hub URL --enroll CODE`');
      agent.engine.now();
      return reply.code(202).send(agent.status());
    });

    app.get('/api/catalog/hub', async (req, reply) => {
      reader(req);
      const requested = new Set(agent.mirror.requests().map((r) => r.id));
      const byId = new Map<string, Record<string, unknown>>();
      for (const r of agent.mirror.list()) {
        const have = lessons.get(r.entry.id);
        const prev = byId.get(r.entry.id);
        byId.set(r.entry.id, {
          ...r.entry,
          assigned: (prev?.assigned as boolean | undefined) === true || r.kind === 'assign',
          onBox: !!have && have.status === 'ready' && (have.version ?? 0) >= r.entry.version,
          requested: requested.has(r.entry.id),
        });
      }
      return reply.header('cache-control', 'no-store').send({ hub: { connected: agent.bridge?.connected ?? false, lastSeen: agent.bridge?.lastSeen ?? null }, lessons: [...byId.values()] });
    });

    // "Pedir / Request": a teacher asks the hub for a lesson; fetched first in the next window
    app.post('/api/requests/:id', {
      schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$' } } } },
    }, async (req, reply) => {
      const by = sessions.require(req, ['teacher', 'admin']);
      const id = (req.params as { id: string }).id;
      if (!agent.outbox || !agent.school) throw new YachayError('YCH_HTTP_NOT_ENROLLED', 'this box is not enrolled with a hub yet');
      if (!agent.mirror.get(id)) throw new YachayError('YCH_HTTP_NOT_FOUND', 'the hub\'s catalog has no such lesson');
      agent.mirror.request(id, by.username);
      agent.outbox.add(topics.request(agent.school, id), JSON.stringify({ at: agent.engine?.clock.now() ?? Date.now(), by: by.username }));
      agent.engine?.wake();
      return reply.code(202).send({ id, requested: true });
    });

    // the box as a peer origin: the same layout as the hub's, read-only, no auth (lessons are
    // public and each manifest is signed by the hub)
    app.get('/manifests/:name', async (req, reply) => {
      const name = (req.params as { name: string }).name;
      if (!MANIFEST.test(name)) throw new YachayError('YCH_HTTP_NOT_FOUND', 'no such manifest');
      return sendFile(req, reply, join(o.originRoot, 'manifests', name), name.endsWith('.sig') ? 'text/plain' : 'application/json');
    });
    app.get('/blobs/sha256/:ab/:sha', async (req, reply) => {
      const { ab, sha } = req.params as { ab: string; sha: string };
      if (!SHA.test(sha) || ab !== sha.slice(0, 2)) throw new YachayError('YCH_HTTP_NOT_FOUND', 'no such blob');
      reply.header('cache-control', 'public, max-age=31536000, immutable');
      return sendFile(req, reply, join(o.originRoot, 'blobs', 'sha256', ab, sha), 'application/octet-stream');
    });

    // a play is a master playlist served: what the disk quota keeps when it must evict
    app.addHook('onResponse', async (req, reply) => {
      if (reply.statusCode !== 200 || req.method !== 'GET') return;
      const m = /^\/media\/([A-Za-z0-9][A-Za-z0-9_-]{0,127})\/master\.m3u8(?:\?|$)/.exec(req.url);
      if (m) lessons.countPlay(m[1]!);
    });
  };
}
