import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from './config/schema.js';
import type { Logger } from './log.js';
import { App } from './app.js';
import { DbService } from './db/db.js';
import { dataPaths } from './paths.js';
import { Users } from './users/users.js';
import { SetupToken } from './users/setup-token.js';
import { LoginLimiter } from './users/login-limiter.js';
import { Lessons } from './catalog/lessons.js';
import { checkPublished } from './catalog/package-check.js';
import { lessonManager } from './catalog/manager.js';
import { JanitorService } from './catalog/janitor.js';
import { JobQueue } from './jobs/queue.js';
import { WorkerService } from './jobs/worker.js';
import type { JobEvent } from './jobs/worker.js';
import { OPTIMIZE, createOptimizeHandler } from './jobs/optimize-job.js';
import { publicJobEvent } from './jobs/public-event.js';
import { BrokerService } from './broker/broker.js';
import { GovernorService } from './telemetry/governor.js';
import { registerBoxMetrics } from './telemetry/metrics.js';
import { HttpService } from './http/server.js';
import { registerPlayer } from './http/player.js';
import { makeSampleLecture } from './sample/lecture.js';
import type { Service } from './service.js';
import { verifyModels } from './models/manifest.js';
import { recordEncodes } from './models/rate/store.js';
import { SyncAgent, VERSION } from './sync/agent.js';
import { syncRoutes } from './sync/routes.js';
import { UpdateService } from './update/service.js';
import { releaseTopic } from './update/manifest.js';
import { normalizeArch } from './update/version.js';

/**
 * The edge role's composition root: builds every service of a school box on one database and
 * hands them to App in start order (database, broker, worker, HTTP); App stops them in reverse.
 */
export interface Edge {
  app: App;
  http: HttpService;
  broker: BrokerService;
  worker: WorkerService;
  lessons: Lessons;
  queue: JobQueue;
  users: Users;
  /** the first admin's one-time token while the box has none */
  setup: SetupToken;
  /** enrollment, bridge to the hub, sync engine (issue 9) */
  sync: SyncAgent;
  /** signed releases from the hub (issue 11 item 7) */
  update: UpdateService;
}

export interface EdgeOptions {
  /** `start --enroll CODE`: exchanged once with the hub (cfg.sync.hub) */
  enrollCode?: string | undefined;
  /** asked by the updater after switching `current`: stop and exit so the supervisor starts it */
  restart?: ((why: string) => void) | undefined;
}

export async function buildEdge(cfg: Readonly<Config>, log: Logger, opts: EdgeOptions = {}): Promise<Edge> {
  // a missing or altered model stops the box here, not in the middle of a teacher's upload
  verifyModels(Object.entries(cfg.optimize.models).filter(([, on]) => on).map(([id]) => id));
  const paths = dataPaths(cfg.dataDir);
  for (const dir of [paths.store, paths.sources, paths.uploads, paths.broker, paths.origin]) await mkdir(dir, { recursive: true });
  const dbSvc = new DbService(paths.db);
  await dbSvc.start();
  const db = dbSvc.db;
  const users = new Users(db);
  const setup = await SetupToken.forBox(users, paths.setupToken);
  const lessons = new Lessons(db);
  for (const b of await checkPublished(lessons, paths.store)) log.warn(b, 'published lesson is damaged: marked failed');
  const queue = new JobQueue(db, { maxAttempts: cfg.jobs.maxAttempts });
  // enrollment first: a refused code stops the start here; the enrolled school names the topics
  let broker: BrokerService | undefined;
  let update: UpdateService | undefined;
  const sync = new SyncAgent({
    cfg: cfg.sync, paths, db, lessons, log: log.child({ svc: 'sync' }), version: VERSION, enrollCode: opts.enrollCode,
    release: cfg.update.enabled ? { topic: releaseTopic(normalizeArch(cfg.update.arch || process.arch)), offer: (p) => update?.offer(p) } : undefined,
    publishLocal: async (topic, payload, o) => { if (broker?.healthy()) await broker.publish(topic, payload, o); },
  });
  try { await sync.prepare(); } catch (err) { await dbSvc.stop(); throw err; }
  const school = sync.school ?? cfg.school;
  // one count of failed logins per address, whether the password came over HTTP or MQTT
  const limiter = new LoginLimiter(cfg.http.loginAttemptsPerMinute, 60_000);
  broker = new BrokerService({ cfg: cfg.mqtt, school, users, dir: paths.broker, log: log.child({ svc: 'broker' }), limiter });
  const jobTopic = (e: JobEvent): string => `yachay/${school}/jobs/${e.lessonId ?? e.id}`;
  const lastProgress = new Map<number, number>();
  const onEvent = (e: JobEvent): void => {
    // progress is published at most once per percent: a Pi's broker has better things to do
    if (e.progress !== undefined) {
      const pct = Math.floor(e.progress * 100);
      if (lastProgress.get(e.id) === pct) return;
      lastProgress.set(e.id, pct);
    }
    if (e.state === 'done' || e.state === 'dead') lastProgress.delete(e.id);
    if (broker?.healthy()) {
      broker.publish(jobTopic(e), JSON.stringify(publicJobEvent(e)), { qos: 0 }).catch((err: unknown) => log.warn({ err }, 'job event not published'));
    }
  };
  const worker = new WorkerService({
    queue, cfg: cfg.jobs, log: log.child({ svc: 'worker' }), onEvent,
    handlers: { [OPTIMIZE]: createOptimizeHandler({
      lessons, paths, cfg: cfg.optimize, dataDir: cfg.dataDir,
      recordEncodes: (rows) => recordEncodes(db, rows),
    }) },
  });
  // watches temperature and power from the start; it only ever pauses encodes, never serving
  const governor = new GovernorService(cfg.jobs.governor, log.child({ svc: 'governor' }));
  let app: App | undefined;
  const http = new HttpService({
    cfg: cfg.http, log: log.child({ svc: 'http' }), db, store: paths.store, lessons, users,
    uploads: paths.uploads, sources: paths.sources, setup, limiter,
    metrics: (registry) => registerBoxMetrics(registry, { db, dataDir: paths.root, governor }),
    health: () => app?.health() ?? {},
    // the broker has started (and knows its port) by the time HTTP builds its routes
    plugins: [
      (f, { sessions }) => registerPlayer(f, {
        school, mqttWsPort: broker!.ports.ws, studentToken: (from) => broker!.issueStudentToken(from), hubSync: true,
        user: (req) => {
          const u = sessions.of(req)?.user;
          if (!u) return undefined;
          return { username: u.username, role: u.role, mqtt: u.role === 'teacher' || u.role === 'admin' ? broker!.issueUserToken(u) : null };
        },
      }),
      syncRoutes({ agent: sync, lessons, originRoot: paths.origin, studentsNeedLogin: cfg.http.studentsNeedLogin }),
    ],
    manage: lessonManager({
      db, lessons, queue, paths, log: log.child({ svc: 'catalog' }),
      cancel: (ids) => worker.cancel(ids), wake: () => worker.wake(),
      // not retained: a page that opens later reads the catalog itself
      announce: (c) => {
        if (broker?.healthy()) broker.publish(`yachay/${school}/catalog/${c.id}`, JSON.stringify(c), { qos: 0 }).catch((err: unknown) => log.warn({ err }, 'lesson change not published'));
      },
    }),
    reencode: (lessonId, boost) => {
      const source = lessons.get(lessonId)?.source;
      if (!source) return undefined;
      const jobId = queue.enqueue(OPTIMIZE, { lessonId, source, boost });
      worker.wake();
      return { jobId };
    },
    onUpload: async (file) => {
      // the lesson and its job together or neither: never a lesson "queued" with no job
      const lesson = db.transaction(() => {
        const l = lessons.create({ title: file.title, source: file.path });
        queue.enqueue(OPTIMIZE, { lessonId: l.id, source: file.path });
        return l;
      })();
      worker.wake();
      return { lessonId: lesson.id };
    },
  });
  update = new UpdateService({
    cfg: cfg.update, dataDir: paths.root, db, agent: sync, queue, uploads: paths.uploads, hubKeyFile: paths.hubKey,
    healthUrl: () => `${http.url}/health`, log: log.child({ svc: 'update' }),
    restart: (why) => { if (opts.restart) opts.restart(why); else log.warn({ why }, 'restart asked, but this box has no supervisor hook: restart it by hand'); },
  });
  // the sync after the broker (it relays into it), before HTTP (whose routes show its state)
  // abandoned uploads and unused recordings: swept at start and hourly, beside everything else
  const janitor = new JanitorService({ db, paths, log: log.child({ svc: 'janitor' }) });
  // the updater last: it judges a new release by the /health of everything before it
  const services: Service[] = [dbSvc, janitor, governor, broker, sync, worker, http, update];
  app = new App(services, log, cfg.shutdown.serviceMs);
  return { app, http, broker, worker, lessons, queue, users, setup, sync, update };
}

/** First start with an empty catalog: queue the bundled sample lecture so a newcomer sees a lesson. */
export async function seedSample(edge: Edge, cfg: Readonly<Config>, log: Logger, signal: AbortSignal): Promise<string | undefined> {
  if (edge.lessons.list({}).length > 0) return undefined;
  const paths = dataPaths(cfg.dataDir);
  const src = join(paths.sources, 'clase-de-ejemplo.mp4');
  const cached = join(paths.root, 'samples', 'clase-de-ejemplo.mp4');
  try {
    await copyFile(cached, src);
  } catch {
    await makeSampleLecture(src, { seconds: 60, lang: 'es', signal, reuse: true });
  }
  const lesson = edge.lessons.create({ title: 'Clase de ejemplo: el ciclo del agua', source: src });
  edge.queue.enqueue(OPTIMIZE, { lessonId: lesson.id, source: src });
  edge.worker.wake();
  log.info({ lessonId: lesson.id }, 'sample lesson queued');
  return lesson.id;
}
