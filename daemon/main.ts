import { basename, extname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { createLogger } from './log.js';
import { systemdNotifier } from './util/sd-notify.js';
import { YachayError, isYachayError, reportError } from './errors.js';
import { killAllChildren } from './media/run.js';
import { dataPaths } from './paths.js';

const HELP = `yachay — lecciones livianas para la escuela / light lessons for the school

Uso / usage:
  yachay start [--http-port N] [--mqtt-port N] [--mqtt-ws-port N]
                                                  la caja de la escuela / run the school box
        [--hub URL --enroll CODE]                 inscribe la caja en el hub (una vez) / enroll the box once
        [--sync-window always|HH:MM-HH:MM]        horario de sincronización / when to sync (default 22:00-05:00, Lima)
  yachay sync now                                 sincroniza ya, fuera del horario / sync now, outside the window
                                                  (habla con la caja en marcha / tells the running box)
  yachay optimize <input> [--out DIR] [--plan]   optimiza una grabación / optimize a recording
  yachay sample [--out FILE] [--seconds N] [--lang es|en]
                                                  genera una clase de ejemplo / make a sample lecture
  yachay demo [--out DIR]                         ejemplo + optimización / sample + optimize
  yachay users add <name> [--role admin|teacher|device]
                                                  crea una cuenta (contraseña por teclado o stdin)
  yachay users list | users remove <name>
  yachay lessons list | lessons delete <id> | lessons retry <id>
                                                  lecciones de la caja / the box's lessons
  yachay lessons rename <id> --title T            cambia el título / rename a lesson
  yachay export <id>... --to DIR                  lecciones del hub a una memoria USB / hub lessons to a USB drive
  yachay import DIR [--hub-key FILE]              instala lo que trae la memoria (firma y sha256 revisados)
                                                  / install from a USB drive (signature and sha256 checked)
  yachay backup --to DIR [--with-content] [--keep N]
                                                  copia de la caja (base de datos, inscripción, modelos)
                                                  / back up the box's state while it runs
  yachay restore --from DIR [--force]             restaura una copia / restore a backup
  yachay check-config                             valida la configuración / validate the config
  yachay update-guard                             vigila una actualización y vuelve atrás si /health falla
                                                  / judge an update, roll back if /health stays bad (started by the box)
  yachay hub start --data-dir DIR --http-port N --mqtt-port N [--database URL] [--broker URL]
                                                  el hub central / the central hub (yachay hub --help)
  yachay hub enroll SCHOOL [--name N] [--channels a,b] --data-dir DIR
                                                  código de inscripción / enrollment code (last line)
  yachay hub add FILE --title T [--channel C] --data-dir DIR [--wait]
                                                  publica una lección / publish a lesson (prints its id)
  yachay hub revoke SCHOOL | hub assign SCHOOL LESSON --data-dir DIR
  yachay hub release BUNDLE.tar.gz --data-dir DIR [--arch arm64]
                                                  publica una versión firmada para las cajas / publish a signed release to the boxes
  yachay models check|list|train|rollback|collect|export-data|import-data
                                                  modelos del plan / the plan's models (yachay models --help)

Opciones / options:
  --config FILE      JSON config (also YACHAY_CONFIG); every key also as YACHAY_* env
  --data-dir DIR     data folder (default ./.yachay)
  --preset NAME      x264 preset (medium by default)
  --no-verify        publish without measuring the quality floors
  --no-models        plan with rules only (no speech, face or rate model)
  --models LIST      only these models assist the plan: vad,face,rate
  --log-level LEVEL  fatal|error|warn|info|debug (default warn on the CLI)
  --quiet            no progress output
  -h, --help         this help
`;

const OPTIONS = {
  out: { type: 'string' },
  plan: { type: 'boolean', default: false },
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  preset: { type: 'string' },
  'no-verify': { type: 'boolean', default: false },
  'no-models': { type: 'boolean', default: false },
  models: { type: 'string' },
  'log-level': { type: 'string' },
  quiet: { type: 'boolean', default: false },
  seconds: { type: 'string' },
  lang: { type: 'string' },
  role: { type: 'string' },
  'http-port': { type: 'string' },
  'mqtt-port': { type: 'string' },
  'mqtt-ws-port': { type: 'string' },
  to: { type: 'string' },
  'hub-key': { type: 'string' },
  hub: { type: 'string' },
  enroll: { type: 'string' },
  'sync-window': { type: 'string' },
  from: { type: 'string' },
  'with-content': { type: 'boolean', default: false },
  keep: { type: 'string' },
  title: { type: 'string' },
  force: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function overridesFrom(v: Values): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (v['data-dir']) o.dataDir = v['data-dir'];
  if (v['log-level']) o.log = { level: v['log-level'] };
  // ports from flags are numbers for the schema; a non-number is reported by validation
  const port = (x: string | undefined): number | string | undefined => (x === undefined ? undefined : /^\d+$/.test(x) ? Number(x) : x);
  if (v['http-port'] !== undefined) o.http = { port: port(v['http-port']) };
  if (v['mqtt-port'] !== undefined || v['mqtt-ws-port'] !== undefined) {
    o.mqtt = { ...(v['mqtt-port'] !== undefined ? { port: port(v['mqtt-port']) } : {}), ...(v['mqtt-ws-port'] !== undefined ? { wsPort: port(v['mqtt-ws-port']) } : {}) };
  }
  const opt: Record<string, unknown> = {};
  if (v.preset) opt.preset = v.preset;
  if (v['no-verify']) opt.verify = false;
  if (v['no-models'] || v.models !== undefined) {
    const on = v['no-models'] ? [] : v.models!.split(',').map((x) => x.trim()).filter(Boolean);
    const unknown = on.filter((x) => !['vad', 'face', 'rate'].includes(x));
    if (unknown.length) throw new YachayError('YCH_ERR_USAGE', `--models: unknown model ${unknown.join(', ')} (known: vad, face, rate)`);
    opt.models = { vad: on.includes('vad'), face: on.includes('face'), rate: on.includes('rate') };
  }
  if (Object.keys(opt).length) o.optimize = opt;
  const sync: Record<string, unknown> = {};
  if (v.hub !== undefined) sync.hub = v.hub;
  if (v['sync-window'] !== undefined) sync.window = v['sync-window'];
  if (Object.keys(sync).length) o.sync = sync;
  return o;
}

export async function main(argv: string[]): Promise<number> {
  // `models` has its own options (--seeds, --json…): it parses its arguments itself
  if (argv[0] === 'models') return modelsCommand(argv.slice(1));
  // `hub` has its own options (--title, --database…) and its own lifecycle
  if (argv[0] === 'hub') return (await import('./hub/cli.js')).hubCommand(argv.slice(1));
  let values: Values; let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (err) {
    process.stderr.write(`yachay: ${(err as Error).message}\n${HELP}`);
    return 64;
  }
  // before the command check: `yachay --version` alone is a whole question
  if (values.version) {
    const { RUNNING_VERSION } = await import('./update/version.js');
    process.stdout.write(`${RUNNING_VERSION}\n`);
    return 0;
  }
  if (values.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return positionals.length === 0 && !values.help ? 64 : 0;
  }

  const abort = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) { killAllChildren(); process.exit(130); }
    process.stderr.write(`\nyachay: ${sig}, stopping… (again to force)\n`);
    abort.abort(new YachayError('YCH_ERR_ABORTED', `stopped by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const [cmd, ...rest] = positionals;
    const cfg = loadConfig({
      file: values.config, overrides: overridesFrom(values),
      // the one-shot commands talk to a person: only warnings unless asked; the box logs info
      env: { YACHAY_LOG_LEVEL: cmd === 'start' ? 'info' : 'warn', ...process.env },
    });
    switch (cmd) {
      case 'start':
        return await runStart(cfg, abort.signal, values.enroll);
      case 'check-config':
        process.stdout.write(JSON.stringify(cfg, null, 2) + '\n');
        return 0;
      case 'update-guard': {
        const { runGuard } = await import('./update/guard.js');
        const r = await runGuard({ dataDir: cfg.dataDir, log: createLogger(cfg.log.level).child({ svc: 'update-guard' }) });
        process.stderr.write(`yachay update-guard: ${r}\n`);
        return 0;
      }
      case 'optimize': {
        if (rest.length !== 1) throw new YachayError('YCH_ERR_USAGE', 'optimize needs exactly one input file');
        return await runOptimize(cfg, rest[0]!, values, abort.signal);
      }
      case 'sample':
        return await runSample(values, abort.signal);
      case 'demo':
        return await runDemo(cfg, values, abort.signal);
      case 'export': {
        const { exportCommand } = await import('./pkg/cli.js');
        return await exportCommand(cfg.dataDir, rest, values.to, { quiet: values.quiet, signal: abort.signal });
      }
      case 'import': {
        const { importCommand } = await import('./pkg/cli.js');
        if (rest.length > 1) throw new YachayError('YCH_ERR_USAGE', 'import takes one folder');
        return await importCommand(cfg.dataDir, rest[0], values['hub-key'], { quiet: values.quiet, signal: abort.signal });
      }
      case 'sync': {
        const { syncCommand } = await import('./sync/cli.js');
        return await syncCommand(cfg, rest);
      }
      case 'lessons': {
        const { lessonsCommand } = await import('./catalog/cli.js');
        return await lessonsCommand(cfg.dataDir, rest, { title: values.title });
      }
      case 'backup': {
        const { backupCommand } = await import('./backup/cli.js');
        return await backupCommand(cfg.dataDir, { to: values.to, withContent: values['with-content'], keep: values.keep, configFile: values.config ?? process.env.YACHAY_CONFIG, quiet: values.quiet });
      }
      case 'restore': {
        const { restoreCommand } = await import('./backup/cli.js');
        return await restoreCommand(cfg.dataDir, { from: values.from ?? rest[0], force: values.force, quiet: values.quiet });
      }
      case 'users': {
        const { usersCommand } = await import('./users/cli.js');
        return await usersCommand(cfg.dataDir, rest, values.role);
      }
      default:
        throw new YachayError('YCH_ERR_USAGE', `unknown command "${cmd}"`);
    }
  } catch (err) {
    return report(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function modelsCommand(argv: string[]): Promise<number> {
  const abort = new AbortController();
  const onSignal = (): void => abort.abort(new YachayError('YCH_ERR_ABORTED', 'stopped by a signal'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const cfg = loadConfig({ env: { YACHAY_LOG_LEVEL: 'warn', ...process.env } });
    const { runModels } = await import('./models/cli.js');
    return await runModels(argv, { dataDir: cfg.dataDir, log: createLogger(cfg.log.level), signal: abort.signal });
  } catch (err) {
    return report(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

const report = reportError;

function defaultOut(cfg: Config, input: string): string {
  const name = basename(input, extname(input)).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'leccion';
  return join(cfg.dataDir, 'lessons', name);
}

async function runOptimize(cfg: Config, input: string, values: Values, signal: AbortSignal): Promise<number> {
  const { optimize, describeMisses } = await import('./optimize/optimizer.js');
  const { createProgress } = await import('./optimize/progress.js');
  const { loadNative } = await import('./analysis/native.js');
  const log = createLogger(cfg.log.level);
  const kernels = loadNative();
  log.info({ isa: kernels.isa() }, 'analysis kernels loaded');
  const out = values.out ?? defaultOut(cfg, input);
  const progress = createProgress(process.stderr, values.quiet || values.plan);
  const t0 = performance.now();
  const res = await optimize({ input, out, planOnly: values.plan }, { cfg: cfg.optimize, log, kernels, progress, signal, dataDir: cfg.dataDir });
  if (values.plan) {
    process.stdout.write(JSON.stringify({ plan: res.plan, shots: res.shots, timings: res.timings }, null, 2) + '\n');
    return 0;
  }
  const wall = (performance.now() - t0) / 1000;
  const low = res.package?.video[0] ?? res.package?.audio[0];
  const lowAudio = res.package?.audio.find((a) => a.id === 'a-opus');
  const bytesLow = (low?.bytes ?? 0) + (res.package?.video.length ? lowAudio?.bytes ?? 0 : 0);
  const summary = {
    out: res.out, master: res.out ? join(res.out, 'master.m3u8') : undefined,
    duration_s: res.input.duration,
    lowest_mb_per_min: Number((bytesLow / 1e6 / (res.input.duration / 60)).toFixed(3)),
    renditions: [...(res.package?.video ?? []), ...(res.package?.audio ?? [])].map((r) => ({ id: r.id, kbps: Math.round(r.averageBps / 1000), bytes: r.bytes })),
    downloads: (res.package?.downloads ?? []).map((d) => ({ kind: d.kind, path: d.path, bytes: d.bytes })),
    shots: res.plan.shots.map((s) => `${s.start.toFixed(1)}-${s.end.toFixed(1)} ${s.cls}`),
    verify: res.verify ? { ocr_ratio: res.verify.ocrRatio, stoi: res.verify.stoi, ssim: res.verify.ssim, skipped: res.verify.skipped } : 'skipped',
    // published anyway: the teacher is told where, and can ask for a re-encode with more quality
    misses: res.misses.map((m) => ({ kind: m.kind, shot: m.shot, start: m.start, end: m.end, value: Number(m.value.toFixed(4)), floor: Number(m.floor.toFixed(4)), ceiling: m.ceiling === undefined ? undefined : Number(m.ceiling.toFixed(4)) })),
    attempts: res.attempts,
    models: res.models ?? 'off',
    timings_ms: res.timings,
    speed_x_realtime: Number((res.input.duration / wall).toFixed(2)),
  };
  if (process.stdout.isTTY) {
    process.stdout.write(`\nLista / done: ${summary.master}\n` +
      `  ${summary.lowest_mb_per_min} MB/min (ahorro / data saver), ${summary.speed_x_realtime}× tiempo real / real time\n` +
      `  ${JSON.stringify(summary.verify)}\n` +
      (res.misses.length ? `  bajo el mínimo / under the floor: ${describeMisses(res.misses)}\n` : ''));
  } else {
    process.stdout.write(JSON.stringify(summary) + '\n');
  }
  if (res.misses.length) {
    process.stderr.write(`yachay: aviso / warning: publicada, pero ${res.misses.length} parte(s) quedan bajo el mínimo de calidad / published, `
      + `but ${res.misses.length} part(s) are under the quality floor after ${res.attempts} encodes: ${describeMisses(res.misses)}\n`
      + '  → the lesson plays; run again with more quality (teacher page: "Volver a codificar con más calidad") or record with more light and a steadier camera\n');
  }
  return 0;
}

async function runStart(cfg: Config, signal: AbortSignal, enrollCode?: string): Promise<number> {
  const { buildEdge, seedSample } = await import('./edge.js');
  const { UPDATE_EXIT_CODE } = await import('./update/service.js');
  const log = createLogger(cfg.log.level);
  // after switching `current`, the updater asks for a restart: stop in order, exit 75 (see update/service.ts)
  let restartAsked: string | undefined;
  let askRestart!: () => void;
  const restart = new Promise<void>((resolve) => { askRestart = resolve; });
  const edge = await buildEdge(cfg, log, { enrollCode, restart: (why) => { restartAsked ??= why; askRestart(); } });
  const stopped = Promise.race([restart, new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))]);
  // the update guard's "restart into current" (update/guard.ts): the same ordered stop, exit 75
  const onUsr2 = (): void => { restartAsked ??= 'restart asked (SIGUSR2, update guard)'; askRestart(); };
  process.on('SIGUSR2', onUsr2);
  // a bug that escapes every handler must not leave a half-working box (a broker without a
  // database, a server without a worker): log it, stop in order, and let systemd restart a
  // clean process
  let crashed = false;
  const crash = (err: unknown, kind: string): void => {
    log.fatal({ err, kind }, 'unexpected error: stopping so the service restarts clean');
    if (crashed) return;
    crashed = true;
    void edge.app.stop(kind).finally(() => process.exit(70));
  };
  const onException = (err: Error): void => crash(err, 'uncaughtException');
  const onRejection = (err: unknown): void => crash(err, 'unhandledRejection');
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  // SIGTERM while starting (a slow disk, a broker store to open) cancels the start
  const cancelStart = (): void => { void edge.app.stop('stopped while starting'); };
  signal.addEventListener('abort', cancelStart, { once: true });
  try {
    await edge.app.start();
  } catch (err) {
    await edge.app.stop('start failed');
    throw err;
  } finally {
    signal.removeEventListener('abort', cancelStart);
  }
  if (signal.aborted) { await edge.app.stop('stopped while starting'); return edge.app.exitCode; }
  // under systemd (Type=notify): ready now; a watchdog ping every half period while the event
  // loop turns and the database answers, so a hung box is restarted instead of sitting silent
  const sd = systemdNotifier(process.env, (err) => log.warn({ err }, 'systemd notify failed'));
  sd.send(`READY=1\nSTATUS=${edge.http.url}`);
  const watchdog = sd.watchdogMs === undefined ? undefined : setInterval(() => {
    if (edge.app.health().db) sd.send('WATCHDOG=1');
  }, sd.watchdogMs);
  watchdog?.unref();
  signal.addEventListener('abort', () => { clearInterval(watchdog); sd.send('STOPPING=1'); }, { once: true });
  const url = edge.http.url;
  await edge.sync.writeControl(url).catch((err: unknown) => log.warn({ err }, '`yachay sync now` will not find this box'));
  process.stderr.write(`yachay: lista / ready — ${url}  (MQTT ${edge.broker.ports.tcp}, WebSocket ${edge.broker.ports.ws})\n`);
  const lan = edge.http.lanUrls.filter((u) => u !== url);
  if (lan.length) process.stderr.write(`yachay: en la red de la escuela / on the school network: ${lan.join('  ')}\n`);
  if (edge.setup.token) {
    // the token is in the fragment (#): browsers never send it to the server or into its logs
    process.stderr.write(
      'yachay: aún no hay administrador / no admin yet. Cree la cuenta en / create it at:\n' +
      `  ${url}/#/setup/${edge.setup.token}\n` +
      `  (código de un solo uso / one-time code: ${edge.setup.token}; también en / also in ${dataPaths(cfg.dataDir).setupToken};\n` +
      '   o en la terminal / or in a terminal: `yachay users add <name> --role admin`)\n');
  }
  // an enrolled box gets its lessons from the hub: no sample encode competing with the sync
  if (!edge.sync.creds) seedSample(edge, cfg, log, signal).catch((err: unknown) => log.warn({ err }, 'sample lesson not queued'));
  await stopped;
  if (restartAsked) { clearInterval(watchdog); sd.send(`STOPPING=1\nSTATUS=${restartAsked}`); }
  await edge.app.stop(restartAsked ?? String(signal.reason?.message ?? 'signal'));
  process.off('uncaughtException', onException);
  process.off('unhandledRejection', onRejection);
  process.off('SIGUSR2', onUsr2);
  return restartAsked && edge.app.exitCode === 0 ? UPDATE_EXIT_CODE : edge.app.exitCode;
}

async function runSample(values: Values, signal: AbortSignal): Promise<number> {
  const { makeSampleLecture } = await import('./sample/lecture.js');
  const out = resolve(values.out ?? 'sample-lecture.mp4');
  const lang = values.lang === 'en' ? 'en' : 'es';
  await makeSampleLecture(out, { seconds: values.seconds ? Number(values.seconds) : 60, lang, signal });
  process.stdout.write(`${out}\n`);
  return 0;
}

async function runDemo(cfg: Config, values: Values, signal: AbortSignal): Promise<number> {
  const { makeSampleLecture } = await import('./sample/lecture.js');
  const src = resolve(cfg.dataDir, 'samples', 'clase-de-ejemplo.mp4');
  process.stderr.write(`yachay: generando la clase de ejemplo / making the sample lecture: ${src}\n`);
  await makeSampleLecture(src, { seconds: 60, lang: 'es', signal, reuse: true });
  return runOptimize(cfg, src, { ...values, out: values.out ?? join(cfg.dataDir, 'lessons', 'clase-de-ejemplo') }, signal);
}
