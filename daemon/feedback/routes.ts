import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { FeedbackConfig } from '../config/schema.js';
import { YachayError } from '../errors.js';
import type { Sessions } from '../http/routes/common.js';
import { MAX_BOOST } from '../optimize/boost.js';
import type { FeedbackStore } from './store.js';
import { boostSpans, shotsIn, triggered, type FeedbackKind, type ShotSpan } from './rule.js';

/**
 * What students and teachers say about a lesson (issue 13 item 3):
 *
 *   GET  /api/lessons/:id/shots   → {version, shots: [{index, start, end}]} of the published
 *                                   package (report.json), for the page to say which shot an
 *                                   answer is about
 *   POST /api/feedback {lesson, rendition, kind: text|voice, answer: ok|bad, shots: [index…]}
 *                                 → 202 {stored, reencode: {jobId, shots} | null}. Students:
 *                                   no account (unless http.studentsNeedLogin), limited per
 *                                   address; nothing about the student is kept
 *   POST /api/lessons/:id/flags {start, end, kind, rendition?}   teacher or admin
 *                                 → 202 {shots, reencode: {jobId, shots} | null}
 *
 * A "bad" that meets the rule (feedback/rule.ts) queues a re-encode of the lesson with more bits
 * on those shots only; the published package keeps playing until the new one replaces it.
 */
export interface FeedbackLesson {
  id: string;
  status: string;
  path?: string | null | undefined;
  version?: number | null | undefined;
  updatedAt: number;
}

export interface FeedbackDeps {
  store: FeedbackStore;
  lessons: { get(id: string): FeedbackLesson | undefined; report?(id: string): unknown };
  cfg: Readonly<FeedbackConfig>;
  studentsNeedLogin: boolean;
  /** queues the optimize job with these boost spans; undefined: the recording is gone */
  reencode?: ((lessonId: string, boost: number, spans: Array<{ start: number; end: number; kind: string }>) => { jobId: number } | undefined) | undefined;
  now?: () => number;
}

const HOUR_MS = 3_600_000;
const params = { type: 'object', properties: { id: { type: 'string', maxLength: 128 } } } as const;
const kind = { type: 'string', enum: ['text', 'voice'] } as const;
const rendition = { type: 'string', pattern: '^[a-z0-9-]{1,16}$' } as const;

/** the shots of a published package, from the optimizer's report (job/optimize-job.ts) */
export function shotsOf(report: unknown): ShotSpan[] {
  const shots = (report as { shots?: Array<{ start?: unknown; end?: unknown }> } | null)?.shots;
  if (!Array.isArray(shots)) return [];
  return shots.flatMap((s, index) => (typeof s.start === 'number' && typeof s.end === 'number' ? [{ index, start: s.start, end: s.end }] : []));
}

/** hub lessons carry their version; a local one is known by when it was last published or changed */
const versionOf = (l: FeedbackLesson): number => l.version ?? l.updatedAt;

export function feedbackRoutes(deps: FeedbackDeps): (app: FastifyInstance, ctx: { sessions: Sessions }) => Promise<void> {
  const now = deps.now ?? Date.now;
  // per address: a sliding hour of answers. In memory: a restart forgives, which costs nothing
  const recent = new Map<string, number[]>();
  const allow = (ip: string): boolean => {
    const t = now();
    const seen = (recent.get(ip) ?? []).filter((x) => t - x < HOUR_MS);
    if (seen.length >= deps.cfg.answersPerAddressPerHour) { recent.set(ip, seen); return false; }
    seen.push(t);
    recent.set(ip, seen);
    if (recent.size > 10_000) for (const [k, v] of recent) if (!v.some((x) => t - x < HOUR_MS)) recent.delete(k);
    return true;
  };

  const published = (id: string): { lesson: FeedbackLesson; shots: ShotSpan[] } => {
    const lesson = deps.lessons.get(id);
    if (!lesson) throw new YachayError('YCH_HTTP_NOT_FOUND', 'no such lesson');
    if (lesson.status !== 'ready' || !lesson.path) throw new YachayError('YCH_HTTP_NOT_READY', 'the lesson is not published yet');
    const shots = shotsOf(deps.lessons.report?.(id));
    if (!shots.length) throw new YachayError('YCH_HTTP_FEEDBACK_NO_SHOTS', `lesson ${id} was published without its shots in report.json`);
    return { lesson, shots };
  };

  /** applies the rule to what is pending and queues the re-encode it asks for */
  const act = (lesson: FeedbackLesson, shots: ShotSpan[], log: FastifyRequest['log']): { jobId: number; shots: number[] } | null => {
    const due = triggered(deps.store.pending(lesson.id), deps.cfg);
    if (!due.length || !deps.reencode) return null;
    const before = deps.store.acted(lesson.id);
    // a shot coded again for people once more gets one more step; the others keep theirs
    const level = Math.min(MAX_BOOST, 1 + Math.max(0, ...due.map((d) => before.find((b) => b.shot === d.shot && b.kind === d.kind)?.rounds ?? 0)));
    const spans = boostSpans(shots, [...before, ...due]);
    const queued = deps.reencode(lesson.id, level, spans);
    if (!queued) {
      log.warn({ lessonId: lesson.id }, 'feedback asks for a re-encode but the recording is gone');
      return null;
    }
    deps.store.markActed(lesson.id, due, queued.jobId);
    log.info({ lessonId: lesson.id, jobId: queued.jobId, level, shots: due }, 're-encode with more bits queued from feedback');
    return { jobId: queued.jobId, shots: [...new Set(due.map((d) => d.shot))] };
  };

  return async (app, { sessions }) => {
    const readerGuard = (req: FastifyRequest): void => { if (deps.studentsNeedLogin) sessions.require(req); };

    app.get('/api/lessons/:id/shots', { schema: { params } }, async (req) => {
      readerGuard(req);
      const lesson = deps.lessons.get((req.params as { id: string }).id);
      if (!lesson) throw new YachayError('YCH_HTTP_NOT_FOUND', 'no such lesson');
      // none yet (being prepared, or published before issue 13): an empty list, not an error
      return { version: versionOf(lesson), shots: lesson.status === 'ready' ? shotsOf(deps.lessons.report?.(lesson.id)) : [] };
    });

    app.post('/api/feedback', {
      bodyLimit: 2048,
      schema: {
        body: {
          type: 'object', required: ['lesson', 'rendition', 'kind', 'answer', 'shots'], additionalProperties: false,
          properties: {
            lesson: { type: 'string', maxLength: 128 }, rendition, kind,
            answer: { type: 'string', enum: ['ok', 'bad'] },
            shots: { type: 'array', minItems: 1, maxItems: 64, items: { type: 'integer', minimum: 0, maximum: 100000 } },
          },
        },
      },
    }, async (req, reply) => {
      readerGuard(req);
      if (!allow(req.ip)) {
        throw new YachayError('YCH_HTTP_FEEDBACK_LIMIT', 'too many answers from this address in the last hour', { headers: { 'retry-after': '3600' } });
      }
      const b = req.body as { lesson: string; rendition: string; kind: FeedbackKind; answer: 'ok' | 'bad'; shots: number[] };
      const { lesson, shots } = published(b.lesson);
      const known = [...new Set(b.shots)].filter((i) => shots.some((s) => s.index === i));
      if (!known.length) throw new YachayError('YCH_HTTP_BAD_REQUEST', 'none of these shots is in the lesson');
      const at = now();
      deps.store.record(known.map((shot) => ({
        lesson: lesson.id, version: versionOf(lesson), shot, rendition: b.rendition, kind: b.kind, answer: b.answer, source: 'student', at,
      })));
      const reencode = b.answer === 'bad' ? act(lesson, shots, req.log) : null;
      return reply.code(202).send({ stored: known.length, reencode });
    });

    app.post('/api/lessons/:id/flags', {
      bodyLimit: 2048,
      schema: {
        params,
        body: {
          type: 'object', required: ['start', 'end', 'kind'], additionalProperties: false,
          properties: { start: { type: 'number', minimum: 0 }, end: { type: 'number', minimum: 0 }, kind, rendition },
        },
      },
    }, async (req, reply) => {
      const by = sessions.require(req, ['teacher', 'admin']);
      const b = req.body as { start: number; end: number; kind: FeedbackKind; rendition?: string };
      if (b.end < b.start) throw new YachayError('YCH_HTTP_BAD_REQUEST', 'the span ends before it starts');
      const { lesson, shots } = published((req.params as { id: string }).id);
      const touched = shotsIn(shots, b.start, b.end);
      if (!touched.length) throw new YachayError('YCH_HTTP_BAD_REQUEST', 'the span is outside the lesson');
      const at = now();
      deps.store.record(touched.map((shot) => ({
        lesson: lesson.id, version: versionOf(lesson), shot, rendition: b.rendition ?? 'v0', kind: b.kind, answer: 'bad', source: 'teacher', at,
      })));
      req.log.info({ lessonId: lesson.id, start: b.start, end: b.end, kind: b.kind, shots: touched, by: by.username }, 'teacher flagged a span');
      if (!deps.reencode) throw new YachayError('YCH_HTTP_NO_QUEUE', 'the flag is kept, but this server has no job queue: run `yachay start`');
      return reply.code(202).send({ shots: touched, reencode: act(lesson, shots, req.log) });
    });
  };
}
