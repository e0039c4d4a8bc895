import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Logger } from '../log.js';
import { openDb } from '../db/db.js';
import { dataPaths } from '../paths.js';
import { YachayError, isYachayError } from '../errors.js';
import { createProgress } from '../optimize/progress.js';
import { configDefaults } from '../config/load.js';

/**
 * `yachay models …`: what a technician (or CI) does with the box's models. `check` loads every
 * model in the manifest; the rest is the rate model's life cycle: collect encodes, train,
 * propose (kept only if better on held-out lectures), list, roll back.
 */
export interface ModelsContext {
  dataDir: string;
  log: Logger;
  signal: AbortSignal;
  /** where results go (stdout by default); progress and messages go to stderr */
  out?: NodeJS.WritableStream;
  err?: NodeJS.WriteStream;
}

const USAGE = `Uso / usage: yachay models <check|list|train|rollback|collect|export-data|import-data> [opciones / options]
  check                                   carga y prueba cada modelo / load and run every model
  list                                    versiones del modelo de tasa / rate model versions
  train [--out FILE] [--seed N] [--epochs N] [--no-shipped]
                                          entrena con los datos y propone / train and propose
  rollback                                vuelve a la versión anterior / restore the previous version
  collect --seeds 11-18 [--lang es,en] [--seconds N] [--jsonl FILE]
                                          una clase por semilla e idioma / one lecture per seed and language
  collect --files A.mp4,B.mp4 | --from DIR [--lang es|en] [--offsets=-6,-3,0,3,6,9] [--jsonl FILE]
                                          clases existentes (DIR: cada */lecture.mp4); la clase se llama
                                          como su carpeta / existing lectures (DIR: every */lecture.mp4);
                                          each is named after its folder
    [--rates motion=3,6,10 --rates talking_head=10,15] [--classes motion,talking_head]
                                          también cuadros por segundo / frame rates too
  export-data [--out FILE]                exporta los datos en JSONL / export the dataset as JSONL
  import-data FILE                        importa un JSONL / import a JSONL file
  --data-dir DIR   carpeta de datos / data folder      --json   salida JSON / JSON output`;

const OPTIONS = {
  'data-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  seeds: { type: 'string' },
  lang: { type: 'string' },
  seconds: { type: 'string' },
  files: { type: 'string' },
  from: { type: 'string' },
  offsets: { type: 'string' },
  rates: { type: 'string', multiple: true },
  classes: { type: 'string' },
  jsonl: { type: 'string' },
  out: { type: 'string' },
  seed: { type: 'string' },
  epochs: { type: 'string' },
  'no-shipped': { type: 'boolean', default: false },
  quiet: { type: 'boolean', default: false },
} as const;

/** "11-18", "11,13,15" or "11-13,20" → [11, 12, 13, 20]. */
export function parseSeeds(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+))?\s*$/.exec(part);
    if (!m) throw new YachayError('YCH_ERR_USAGE', `--seeds: "${part}" is not a number or a range like 11-18`);
    const a = Number(m[1]); const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b - a > 1000) throw new YachayError('YCH_ERR_USAGE', `--seeds: bad range ${part}`);
    for (let s = a; s <= b; s++) out.push(s);
  }
  return out;
}

function intOpt(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new YachayError('YCH_ERR_USAGE', `--${name} must be an integer from ${min} to ${max} (got ${v})`);
  return n;
}

export async function runModels(argv: string[], ctx: ModelsContext): Promise<number> {
  const out = ctx.out ?? process.stdout;
  const err = ctx.err ?? process.stderr;
  let values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (e) {
    err.write(`yachay models: ${(e as Error).message}\n${USAGE}\n`);
    return 64;
  }
  const [verb, ...rest] = positionals;
  const dataDir = resolve(values['data-dir'] ?? ctx.dataDir);
  const print = (obj: unknown, text: string): void => { out.write(values.json ? JSON.stringify(obj, null, 1) + '\n' : text + '\n'); };

  switch (verb) {
    case 'check': {
      const { checkModels, formatChecks } = await import('./check.js');
      const checks = await checkModels();
      print(checks, formatChecks(checks));
      return checks.every((c) => c.ok) ? 0 : 1;
    }
    case 'list': {
      const { list } = await import('./rate/registry.js');
      const { SHIPPED_MODEL } = await import('./rate/predict.js');
      const db = openDb(dataPaths(dataDir).db);
      try {
        const versions = list(db);
        const rows = versions.map((v) => `${v.status.padEnd(8)} rate v${v.version}  MAE ${fmt(v.metrics.heldOut?.mae)}  ` +
          `seguro/floor-safe ${fmt(v.metrics.heldOut?.floorSafeAccuracy)}  ${new Date(v.createdAt).toISOString()}  ${v.note ?? ''}`);
        const active = versions.some((v) => v.status === 'active');
        rows.push(`${active ? 'shipped ' : 'active  '} rate v1 (incluido / shipped)  ${SHIPPED_MODEL}`);
        print({ versions, shipped: SHIPPED_MODEL, activeIsShipped: !active }, rows.join('\n'));
        return 0;
      } finally {
        db.close();
      }
    }
    case 'rollback': {
      const { rollback } = await import('./rate/registry.js');
      const { SHIPPED_MODEL } = await import('./rate/predict.js');
      const db = openDb(dataPaths(dataDir).db);
      try {
        const r = await rollback({ db, dataDir, shipped: existsSync(SHIPPED_MODEL) ? SHIPPED_MODEL : undefined });
        print(r, r.restored
          ? `rate v${r.restored.version} activo de nuevo / active again (v${r.retired.version} retirado / retired)`
          : `rate v${r.retired.version} retirado; vuelve el modelo incluido / retired; the shipped model serves again`);
        return 0;
      } finally {
        db.close();
      }
    }
    case 'collect':
      return collect(values, dataDir, ctx, print);
    case 'train':
      return train(values, dataDir, ctx, print);
    case 'export-data': {
      const { loadDataset, toJsonLine } = await import('./rate/store.js');
      const db = openDb(dataPaths(dataDir).db);
      try {
        const rows = loadDataset(db);
        const text = rows.map(toJsonLine).join('\n') + (rows.length ? '\n' : '');
        if (values.out) {
          const { writeFileAtomic } = await import('../util/atomic.js');
          await writeFileAtomic(resolve(values.out), text);
          err.write(`${rows.length} filas / rows → ${values.out}\n`);
        } else {
          out.write(text);
        }
        return 0;
      } finally {
        db.close();
      }
    }
    case 'import-data': {
      if (rest.length !== 1) throw new YachayError('YCH_ERR_USAGE', 'usage: yachay models import-data FILE.jsonl');
      const { readJsonl, recordEncodes } = await import('./rate/store.js');
      const rows = await readJsonl(resolve(rest[0]!));
      const db = openDb(dataPaths(dataDir).db);
      try {
        const n = recordEncodes(db, rows);
        print({ imported: n }, `${n} filas importadas / rows imported`);
        return 0;
      } finally {
        db.close();
      }
    }
    default:
      err.write(`${verb ? `yachay models: orden desconocida / unknown command "${verb}"\n` : ''}${USAGE}\n`);
      return 64;
  }
}

function fmt(x: number | undefined): string {
  return x === undefined ? '-' : x.toFixed(4);
}

type Values = Record<string, string | string[] | boolean | undefined>;
type Print = (obj: unknown, text: string) => void;

/** "-6,-3,0,3" → [-6, -3, 0, 3] (QP offsets from the class default). */
export function parseOffsets(spec: string): number[] {
  const out = spec.split(',').map((p) => Number(p.trim()));
  if (!out.length || out.some((n) => !Number.isInteger(n) || n < -20 || n > 20)) {
    throw new YachayError('YCH_ERR_USAGE', `--offsets takes integers from -20 to 20 separated by commas, e.g. --offsets=-6,-3,0,3,6,9 (got ${spec})`);
  }
  return [...new Set(out)].sort((a, b) => a - b);
}

/**
 * The lectures `collect --files/--from` sweeps. A lecture is named after its folder
 * (…/es-11/lecture.mp4 → es-11), so the held-out split stays by lecture; a name ending in
 * -1, -2 or -3 (the benchmark's seeds, e.g. es-1) is refused, and so are two files with one name.
 * The OCR language comes from a groundtruth.json next to the file ("lang"), else from the name
 * (es-…/en-…, or …-es-N), else from --lang when it names one language.
 */
export async function lectureFiles(values: Values): Promise<Array<{ file: string; lesson: string; lang: 'es' | 'en' }>> {
  const { readdir, readFile } = await import('node:fs/promises');
  const { basename, dirname } = await import('node:path');
  let files: string[] = [];
  if (typeof values.files === 'string') files.push(...values.files.split(',').map((f) => f.trim()).filter(Boolean).map((f) => resolve(f)));
  if (typeof values.from === 'string') {
    const root = resolve(values.from);
    const found: string[] = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (e.isDirectory() && depth < 4) await walk(join(dir, e.name), depth + 1);
        else if (e.isFile() && e.name === 'lecture.mp4' && dir !== root) found.push(join(dir, e.name));
      }
    };
    await walk(root, 0);
    files.push(...found.sort());
  }
  files = [...new Set(files)];
  if (!files.length) throw new YachayError('YCH_ERR_USAGE', 'collect --files/--from: no lecture files found');
  const fallback = typeof values.lang === 'string' && /^(es|en)$/.test(values.lang.trim()) ? values.lang.trim() as 'es' | 'en' : undefined;
  const seen = new Set<string>();
  const out: Array<{ file: string; lesson: string; lang: 'es' | 'en' }> = [];
  for (const file of files) {
    if (!existsSync(file)) throw new YachayError('YCH_ERR_USAGE', `collect: ${file} does not exist`);
    const lesson = basename(dirname(file));
    // seeds 1–3 make the benchmark's lectures (es-1, en-2, …): never train on them
    if (/-[123]$/.test(lesson)) throw new YachayError('YCH_ERR_USAGE', `${lesson} looks like a benchmark lecture (seeds 1-3); collect from others`);
    if (seen.has(lesson)) throw new YachayError('YCH_ERR_USAGE', `two lectures named ${lesson}: lectures are named after their folder`);
    seen.add(lesson);
    let lang: 'es' | 'en' | undefined;
    try {
      const gt = JSON.parse(await readFile(join(dirname(file), 'groundtruth.json'), 'utf8')) as { lang?: unknown };
      if (gt.lang === 'es' || gt.lang === 'en') lang = gt.lang;
    } catch { /* no ground truth next to it */ }
    lang ??= (/(?:^|-)(es|en)-\d+$/.exec(lesson)?.[1] as 'es' | 'en' | undefined) ?? fallback;
    if (!lang) throw new YachayError('YCH_ERR_USAGE', `collect: cannot tell the language of ${lesson}; pass --lang es or --lang en`);
    out.push({ file, lesson, lang });
  }
  return out;
}

async function collect(values: Values, dataDir: string, ctx: ModelsContext, print: Print): Promise<number> {
  if (typeof values.files === 'string' || typeof values.from === 'string') return collectFiles(values, dataDir, ctx, print);
  if (typeof values.seeds !== 'string') throw new YachayError('YCH_ERR_USAGE', 'collect needs --seeds (e.g. --seeds 11-18), --files or --from');
  const seeds = parseSeeds(values.seeds);
  // seeds 1–3 generate the benchmark's lectures: training on them would grade the model on its own homework
  const bench = seeds.filter((s) => s >= 1 && s <= 3);
  if (bench.length) throw new YachayError('YCH_ERR_USAGE', `seeds ${bench.join(', ')} belong to the benchmark; collect from others (11-18 ship)`);
  const langs = String(values.lang ?? 'es,en').split(',').map((l) => l.trim());
  for (const l of langs) if (l !== 'es' && l !== 'en') throw new YachayError('YCH_ERR_USAGE', `--lang takes es and/or en (got ${l})`);
  const seconds = intOpt(values.seconds as string | undefined, 'seconds', 10, 600) ?? 60;
  const offsets = typeof values.offsets === 'string' ? parseOffsets(values.offsets) : undefined;
  const [{ makeSampleLecture }, { sweepFile, lectureVariant }, { recordEncodes, appendJsonl }, { loadNative }] = await Promise.all([
    import('../sample/lecture.js'), import('./rate/sweep.js'), import('./rate/store.js'), import('../analysis/native.js'),
  ]);
  const kernels = loadNative();
  const progress = createProgress(ctx.err ?? process.stderr, Boolean(values.quiet));
  const db = openDb(dataPaths(dataDir).db);
  const work = await mkdtemp(join(tmpdir(), 'yachay-collect-'));
  const done: Array<{ lesson: string; rows: number; seconds: number; ms: number }> = [];
  try {
    const lectures = seeds.flatMap((seed) => langs.map((lang) => ({ seed, lang: lang as 'es' | 'en' })));
    for (const { seed, lang } of lectures) {
      const lesson = `${lang}-${seed}`;
      const t0 = performance.now();
      const { sample, size } = lectureVariant(seed, lang, seconds);
      const file = join(work, `${lesson}.mp4`);
      await makeSampleLecture(file, { ...sample, signal: ctx.signal });
      const rows = await sweepFile(file, {
        lesson, kernels, size, lang: lang === 'es' ? 'spa' : 'eng', signal: ctx.signal, progress, progressWeight: 1 / lectures.length, offsets,
        floors: configDefaults().optimize.floors,
      });
      // each lecture is committed as soon as it is done: an abort keeps the lectures before it
      recordEncodes(db, rows);
      if (typeof values.jsonl === 'string') await appendJsonl(resolve(values.jsonl), rows);
      await rm(file, { force: true });
      const ms = Math.round(performance.now() - t0);
      done.push({ lesson, rows: rows.length, seconds: sample.seconds, ms });
      ctx.log.info({ lesson, rows: rows.length, ms }, 'lecture swept');
    }
  } finally {
    db.close();
    await rm(work, { recursive: true, force: true });
  }
  progress.done();
  const total = done.reduce((n, d) => n + d.rows, 0);
  print({ lectures: done, rows: total }, `${done.length} clases, ${total} filas / lectures, rows:\n` + done.map((d) => `  ${d.lesson}  ${d.rows} rows  ${d.seconds} s  ${(d.ms / 1000).toFixed(0)} s wall`).join('\n'));
  return 0;
}

/** collect from lecture files already on disk: each swept at the size makePlan would pick for it. */
async function collectFiles(values: Values, dataDir: string, ctx: ModelsContext, print: Print): Promise<number> {
  const lectures = await lectureFiles(values);
  const offsets = typeof values.offsets === 'string' ? parseOffsets(values.offsets) : undefined;
  const { parseRates, parseClasses } = await import('./rate/rates.js');
  const rates = parseRates(values.rates);
  const classes = parseClasses(values.classes);
  const [{ sweepFile }, { recordEncodes, appendJsonl }, { loadNative }, { probe }] = await Promise.all([
    import('./rate/sweep.js'), import('./rate/store.js'), import('../analysis/native.js'), import('../optimize/probe.js'),
  ]);
  const kernels = loadNative();
  const progress = createProgress(ctx.err ?? process.stderr, Boolean(values.quiet));
  const db = openDb(dataPaths(dataDir).db);
  const done: Array<{ lesson: string; rows: number; seconds: number; ms: number }> = [];
  try {
    for (const { file, lesson, lang } of lectures) {
      const t0 = performance.now();
      const info = await probe(file, ctx.signal);
      const rows = await sweepFile(file, {
        lesson, kernels, lang: lang === 'es' ? 'spa' : 'eng', signal: ctx.signal, progress, progressWeight: 1 / lectures.length, offsets, rates, classes,
        floors: configDefaults().optimize.floors,
      });
      recordEncodes(db, rows);
      if (typeof values.jsonl === 'string') await appendJsonl(resolve(values.jsonl), rows);
      const ms = Math.round(performance.now() - t0);
      done.push({ lesson, rows: rows.length, seconds: Math.round(info.duration), ms });
      ctx.log.info({ lesson, rows: rows.length, ms }, 'lecture swept');
    }
  } finally {
    db.close();
  }
  progress.done();
  const total = done.reduce((n, d) => n + d.rows, 0);
  print({ lectures: done, rows: total }, `${done.length} clases, ${total} filas / lectures, rows:\n` + done.map((d) => `  ${d.lesson}  ${d.rows} rows  ${d.seconds} s  ${(d.ms / 1000).toFixed(0)} s wall`).join('\n'));
  return 0;
}

async function train(values: Values, dataDir: string, ctx: ModelsContext, print: Print): Promise<number> {
  const [{ loadDataset, readJsonl, SHIPPED_DATASET }, trainer, { exportOnnx, parityCheck }, registry, { SHIPPED_MODEL }] = await Promise.all([
    import('./rate/store.js'), import('./rate/train.js'), import('./rate/onnx-export.js'), import('./rate/registry.js'), import('./rate/predict.js'),
  ]);
  const seed = intOpt(values.seed as string | undefined, 'seed', 0, 2 ** 31 - 1) ?? 1;
  const epochs = intOpt(values.epochs as string | undefined, 'epochs', 1, 10000);
  // --out builds a file (the shipped model) from the shipped data only; otherwise the box's own
  // encodes are added and the result is proposed to this box's registry
  const building = typeof values.out === 'string';
  const rows = values['no-shipped'] ? [] : await readJsonl(SHIPPED_DATASET);
  let db: ReturnType<typeof openDb> | undefined;
  let labels: import('./rate/labels.js').LabelReport | undefined;
  if (!building) {
    db = openDb(dataPaths(dataDir).db);
    // what students and teachers said outweighs what was measured (rate/labels.ts)
    const { applyLabels, loadLabels } = await import('./rate/labels.js');
    const labelled = applyLabels(loadDataset(db, { at: true }), loadLabels(db));
    rows.push(...labelled.rows);
    labels = labelled.report;
  }
  try {
    if (rows.length === 0) throw new YachayError('YCH_ERR_MODEL_MISSING', 'no encodes to train on: run `yachay models collect` first');
    const split = trainer.splitByLecture(rows);
    const person = (rs: typeof rows): number => rs.filter((r) => (r.weight ?? 1) !== 1).length;
    const t0 = performance.now();
    const trained = await trainer.trainRate(split.train, { seed, epochs, signal: ctx.signal });
    const trainMs = Math.round(performance.now() - t0);
    const onnx = exportOnnx(trained.net);
    const work = await mkdtemp(join(tmpdir(), 'yachay-train-'));
    try {
      const tmpFile = join(work, 'rate.onnx');
      await writeFile(tmpFile, onnx);
      const parity = await parityCheck(tmpFile, trained, 500, seed);
      const heldOut = trainer.evaluate(trainer.predictNet(trained.net, split.heldOut.map((r) => r.features)), split.heldOut);
      const summary = {
        rows: rows.length, lectures: new Set(rows.map((r) => r.lesson)).size,
        trainRows: split.train.length, heldOutRows: split.heldOut.length, heldOutLectures: split.heldOutLessons,
        seed, epochs: trained.epochs, trainMs, finalLoss: trained.finalLoss, parityMaxDiff: parity.maxAbsDiff, heldOut,
        ...(labels ? { labels: { ...labels, trainRows: person(split.train), heldOutRows: person(split.heldOut) } } : {}),
      };
      if (building) {
        const { writeFileAtomic } = await import('../util/atomic.js');
        await writeFileAtomic(resolve(values.out as string), onnx);
        print(summary, `modelo escrito / model written: ${values.out as string}\n` + describe(summary));
        return 0;
      }
      try {
        const v = await registry.propose({ db: db!, dataDir, shipped: existsSync(SHIPPED_MODEL) ? SHIPPED_MODEL : undefined },
          { onnx, metrics: summary }, split.heldOut);
        print({ ...summary, version: v }, `rate v${v.version} activo / active\n` + describe(summary));
        return 0;
      } catch (e) {
        if (!isYachayError(e, 'YCH_ERR_MODEL_REJECTED')) throw e;
        print({ ...summary, rejected: e.message }, `rechazado / rejected: ${e.message}\n  → ${e.hint}`);
        return e.exitCode;
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  } finally {
    db?.close();
  }
}

function describe(s: { rows: number; lectures: number; heldOutRows: number; trainMs: number; parityMaxDiff: number; heldOut: { mae: number; floorSafeAccuracy: number };
  labels?: { answers: number; rows: number; lowered: number; weight: number } }): string {
  return `  ${s.rows} filas de ${s.lectures} clases / rows from lectures; ${s.heldOutRows} apartadas / held out\n` +
    (s.labels?.answers ? `  ${s.labels.answers} respuestas de personas / answers from people → ${s.labels.rows} filas con peso ${s.labels.weight} / rows weighted, ${s.labels.lowered} con meta bajada / target lowered\n` : '') +
    `  MAE ${s.heldOut.mae.toFixed(4)}, seguro en el piso / floor-safe ${s.heldOut.floorSafeAccuracy.toFixed(3)}, ` +
    `paridad ONNX / parity ${s.parityMaxDiff.toExponential(2)}, ${(s.trainMs / 1000).toFixed(1)} s`;
}
