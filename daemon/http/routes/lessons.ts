import type { FastifyInstance } from 'fastify';
import { withoutPaths } from '../../jobs/public-event.js';
import type { Lesson, LessonSource } from './api.js';
import { lessonView } from './api.js';
import { type Sessions } from './common.js';
import { YachayError } from '../../errors.js';

/**
 * Lesson management for teachers and admins (issue 12 item 1). The contract the page codes
 * against:
 *
 *   DELETE /api/lessons/:id          → 204; gone from the catalog and the disk. A lesson being
 *                                      encoded is aborted first. MQTT (not retained, QoS 0):
 *                                      yachay/<school>/catalog/<id> {"type":"lesson","id","change":"deleted"}
 *   PATCH  /api/lessons/:id {title}  → 200 with the lesson (as GET /api/lessons/:id); the title
 *                                      is trimmed, 1..200 characters, else 400. MQTT change "renamed"
 *   POST   /api/lessons/:id/retry    → 202 {lessonId, jobId, reason} for a lesson whose job is in
 *                                      the dead letter (status 'failed', or a re-encode that died);
 *                                      409 YCH_HTTP_NOT_FAILED otherwise, 410 YCH_HTTP_NO_SOURCE
 *                                      when its recording is gone. MQTT change "retry"
 *   GET    /api/lessons/:id          → the list's lessonView (which carries `status` and `error`:
 *                                      why the job failed, without the box's paths) plus `floors`
 *                                      (per measure: checks, passed, lowest value, floor) and
 *                                      `dataUse` (bytes, kb/s, MB per minute per rendition; MB per
 *                                      minute of the data-saver mix)
 *
 * 401 without a session, 403 for other roles, 404 for an unknown lesson, 503 on a server with no
 * catalog writer (a bare HTTP server in tests). DELETE and retry take no body: send none, or `{}`
 * when the request says `Content-Type: application/json` (Fastify refuses an empty JSON body).
 */
export interface LessonManager {
  /** false: no such lesson */
  remove(id: string, by: string): Promise<boolean>;
  /** undefined: no such lesson; throws RangeError for a title out of bounds */
  rename(id: string, title: string, by: string): Lesson | undefined;
  retry(id: string, by: string):
    | { ok: true; jobId: number; reason: string | undefined }
    | { ok: false; why: 'missing' | 'no-source' }
    | { ok: false; why: 'not-failed'; status: string };
}

export interface ManageOptions {
  lessons: LessonSource;
  /** the catalog is behind the login (config http.studentsNeedLogin) */
  studentsNeedLogin: boolean;
  sessions: Sessions;
  manage?: LessonManager | undefined;
}

const ROLES = ['teacher', 'admin'] as const;
const MB = 1e6;
const params = { type: 'object', properties: { id: { type: 'string', maxLength: 128 } } } as const;

interface CheckLike { kind?: unknown; value?: unknown; floor?: unknown; ok?: unknown }

/** per measure (ocr, ssim, stoi): how many checks, how many held, the lowest value, the lowest floor */
export function floorsOf(report: unknown): Array<{ kind: string; checks: number; passed: number; min: number; floor: number }> {
  const checks = ((report as { verify?: { checks?: unknown } } | null | undefined)?.verify?.checks);
  if (!Array.isArray(checks)) return [];
  const by = new Map<string, { kind: string; checks: number; passed: number; min: number; floor: number }>();
  for (const c of checks as CheckLike[]) {
    if (typeof c.kind !== 'string' || typeof c.value !== 'number' || typeof c.floor !== 'number') continue;
    const s = by.get(c.kind) ?? { kind: c.kind, checks: 0, passed: 0, min: Infinity, floor: Infinity };
    s.checks++;
    if (c.ok === true) s.passed++;
    s.min = Math.min(s.min, c.value);
    s.floor = Math.min(s.floor, c.floor);
    by.set(c.kind, s);
  }
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return [...by.values()].map((s) => ({ ...s, min: r3(s.min), floor: r3(s.floor) }));
}

/** What a rendition costs a student per minute of lesson, and what the data-saver mix costs. */
export function dataUseOf(l: Lesson): { renditions: Array<{ id: string; bytes: number; kbps: number; mbPerMin: number | null }>; totalBytes: number; dataSaverMBPerMin: number | null } {
  const minutes = l.durationS ? l.durationS / 60 : 0;
  const perMin = (bytes: number): number | null => (minutes > 0 ? Math.round((bytes / MB / minutes) * 1000) / 1000 : null);
  const renditions = (l.renditions ?? []).map((r) => ({ id: r.id, bytes: r.bytes, kbps: r.kbps, mbPerMin: perMin(r.bytes) }));
  const saver = lessonView(l).dataSaverMB as number | null;
  return {
    renditions,
    totalBytes: renditions.reduce((n, r) => n + r.bytes, 0),
    dataSaverMBPerMin: saver !== null && minutes > 0 ? Math.round((saver / minutes) * 1000) / 1000 : null,
  };
}

/** GET /api/lessons/:id: the list's view plus why it failed, its floors and its data use */
export function lessonDetail(l: Lesson, report: unknown): Record<string, unknown> {
  return {
    ...lessonView(l),
    floors: floorsOf(report),
    dataUse: dataUseOf(l),
  };
}

export async function manageRoutes(app: FastifyInstance, opts: ManageOptions): Promise<void> {
  const { sessions } = opts;
  const manager = (): LessonManager => {
    if (!opts.manage) throw new YachayError('YCH_HTTP_NO_QUEUE', 'this server cannot change the catalog: run `yachay start`');
    return opts.manage;
  };
  const notFound = (): YachayError => new YachayError('YCH_HTTP_NOT_FOUND', 'no such lesson');

  app.get('/api/lessons/:id', { schema: { params } }, async (req) => {
    if (opts.studentsNeedLogin) sessions.require(req);
    const l = opts.lessons.get((req.params as { id: string }).id);
    if (!l) throw notFound();
    return lessonDetail(l, opts.lessons.report?.(l.id));
  });

  app.delete('/api/lessons/:id', { schema: { params } }, async (req, reply) => {
    const by = sessions.require(req, ROLES);
    const id = (req.params as { id: string }).id;
    if (!await manager().remove(id, by.username)) throw notFound();
    req.log.info({ lessonId: id, by: by.username }, 'lesson deleted');
    return reply.code(204).header('cache-control', 'no-store').send();
  });

  app.patch('/api/lessons/:id', {
    schema: {
      params,
      body: {
        type: 'object', required: ['title'], additionalProperties: false,
        properties: { title: { type: 'string', minLength: 1, maxLength: 200 } },
      },
    },
  }, async (req, reply) => {
    const by = sessions.require(req, ROLES);
    const id = (req.params as { id: string }).id;
    const { title } = req.body as { title: string };
    if (!title.trim()) throw new YachayError('YCH_HTTP_BAD_TITLE', 'el título no puede estar vacío / the title must not be empty');
    let l: Lesson | undefined;
    try {
      l = manager().rename(id, title, by.username);
    } catch (err) {
      if (err instanceof RangeError) throw new YachayError('YCH_HTTP_BAD_TITLE', err.message);
      throw err;
    }
    if (!l) throw notFound();
    req.log.info({ lessonId: id, by: by.username }, 'lesson renamed');
    return reply.header('cache-control', 'no-store').send(lessonDetail(l, opts.lessons.report?.(id)));
  });

  app.post('/api/lessons/:id/retry', { schema: { params } }, async (req, reply) => {
    const by = sessions.require(req, ROLES);
    const id = (req.params as { id: string }).id;
    const r = manager().retry(id, by.username);
    if (!r.ok) {
      if (r.why !== 'not-failed') {
        if (r.why === 'missing') throw notFound();
        throw new YachayError('YCH_HTTP_NO_SOURCE', 'the recording of this lesson is no longer on the box: upload it again');
      }
      throw new YachayError('YCH_HTTP_NOT_FAILED', `the lesson is ${r.status}: only a lesson whose optimizing failed is retried`);
    }
    req.log.info({ lessonId: id, jobId: r.jobId, by: by.username }, 'lesson retried');
    return reply.code(202).send({ lessonId: id, jobId: r.jobId, reason: r.reason ? withoutPaths(r.reason) : null });
  });
}
