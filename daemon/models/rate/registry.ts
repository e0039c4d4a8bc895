import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Db } from '../../db/db.js';
import { YachayError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic.js';
import { loadModel } from '../runtime.js';
import { predictRows } from './predict.js';
import { activeFile, modelDir } from './files.js';
import type { EncodeRow } from './sweep.js';
import { evaluate } from './train.js';
import type { RateMetrics } from './train.js';

/**
 * The box's versions of the rate model. A newly trained model replaces the active one only if
 * it does better on the same held-out rows (both are run on them here, not trusted from their
 * training reports); every version stays in the database with its bytes, so a rollback works
 * even after the files are gone. The version that serves is one file in the data folder,
 * replaced atomically.
 */
export type VersionStatus = 'active' | 'retired' | 'rejected';

export interface ModelVersion {
  id: number;
  model: 'rate';
  version: number;
  file: string | null;
  sha256: string | null;
  metrics: { heldOut?: RateMetrics; baseline?: RateMetrics & { version: number | 'shipped' }; [k: string]: unknown };
  status: VersionStatus;
  parent: number | null;
  createdAt: number;
  note?: string | undefined;
}

export interface RegistryContext {
  db: Db;
  dataDir: string;
  /** the model shipped with the program: the baseline while the box has no version of its own */
  shipped?: string | undefined;
}

export interface Candidate {
  onnx: Uint8Array;
  /** the trainer's report (rows, seed, timings…), stored beside the registry's own measurement */
  metrics?: Record<string, unknown>;
}

const MODEL = 'rate';


interface Row {
  id: number; model: string; version: number; file: string | null; blob: Buffer | null; sha256: string | null;
  metrics_json: string; status: VersionStatus; parent: number | null; created_at: number;
}

function toVersion(r: Row): ModelVersion {
  const metrics = JSON.parse(r.metrics_json) as ModelVersion['metrics'];
  return {
    id: r.id, model: MODEL, version: r.version, file: r.file, sha256: r.sha256, metrics, status: r.status,
    parent: r.parent, createdAt: r.created_at, note: typeof metrics.note === 'string' ? metrics.note : undefined,
  };
}

export function list(db: Db): ModelVersion[] {
  return (db.prepare('SELECT * FROM model_versions WHERE model = ? ORDER BY version').all(MODEL) as Row[]).map(toVersion);
}

export function active(db: Db): ModelVersion | undefined {
  const r = db.prepare(`SELECT * FROM model_versions WHERE model = ? AND status = 'active'`).get(MODEL) as Row | undefined;
  return r ? toVersion(r) : undefined;
}

function blobOf(db: Db, id: number): Buffer {
  const r = db.prepare('SELECT blob FROM model_versions WHERE id = ?').get(id) as { blob: Buffer | null } | undefined;
  if (!r?.blob) throw new YachayError('YCH_ERR_MODEL_MISSING', `rate model version id ${id} has no stored bytes`);
  return r.blob;
}

/** Runs a model file on the rows with ONNX Runtime, as the box would. */
export async function evaluateFile(file: string, rows: readonly EncodeRow[]): Promise<RateMetrics> {
  const session = await loadModel('onnx', file);
  try {
    return evaluate(await predictRows(session, rows.map((r) => r.features)), rows);
  } finally {
    await session.dispose();
  }
}

/** Better means: fewer wrong calls at the floor is never given up, and the error must shrink. */
export function isBetter(a: RateMetrics, b: RateMetrics): boolean {
  return a.floorSafeAccuracy >= b.floorSafeAccuracy && a.mae < b.mae;
}

function describe(m: RateMetrics): string {
  return `MAE ${m.mae.toFixed(4)}, floor-safe ${m.floorSafeAccuracy.toFixed(3)}`;
}

export async function propose(ctx: RegistryContext, cand: Candidate, heldOut: readonly EncodeRow[]): Promise<ModelVersion> {
  if (heldOut.length === 0) throw new YachayError('YCH_ERR_USAGE', 'a rate model cannot be judged without held-out rows');
  const { db } = ctx;
  const dir = modelDir(ctx.dataDir);
  await mkdir(dir, { recursive: true });
  const cur = active(db);
  const maxRow = db.prepare('SELECT MAX(version) AS v FROM model_versions WHERE model = ?').get(MODEL) as { v: number | null };
  // the shipped file is version 1; the box's own versions count on from it
  const version = Math.max(maxRow.v ?? 0, 1) + 1;
  const bytes = Buffer.from(cand.onnx);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const work = await mkdtemp(join(tmpdir(), 'yachay-rate-'));
  let mine: RateMetrics; let base: (RateMetrics & { version: number | 'shipped' }) | undefined;
  try {
    const candFile = join(work, 'candidate.onnx');
    await writeFile(candFile, bytes);
    mine = await evaluateFile(candFile, heldOut);
    if (cur) {
      const curFile = join(work, 'active.onnx');
      await writeFile(curFile, blobOf(db, cur.id));
      base = { ...(await evaluateFile(curFile, heldOut)), version: cur.version };
    } else if (ctx.shipped) {
      base = { ...(await evaluateFile(ctx.shipped, heldOut)), version: 'shipped' };
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const lectures = [...new Set(heldOut.map((r) => r.lesson))].sort();
  const metrics = { ...cand.metrics, heldOut: mine, baseline: base, heldOutLectures: lectures };
  const insert = db.prepare(`INSERT INTO model_versions (model, version, file, blob, sha256, metrics_json, status, parent, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  if (base && !isBetter(mine, base)) {
    insert.run(MODEL, version, null, bytes, sha256, JSON.stringify(metrics), 'rejected', cur?.id ?? null, Date.now());
    throw new YachayError('YCH_ERR_MODEL_REJECTED',
      `rate v${version} is not better than the active ${base.version === 'shipped' ? 'shipped model' : `v${base.version}`} on the same ${heldOut.length} held-out rows ` +
      `(${lectures.join(', ')}): new ${describe(mine)}; active ${describe(base)}`);
  }
  const file = join(dir, `rate-v${version}.onnx`);
  await writeFileAtomic(file, bytes);
  const id = await install(ctx, bytes, () => db.transaction(() => {
    if (cur) db.prepare(`UPDATE model_versions SET status = 'retired' WHERE id = ?`).run(cur.id);
    return Number(insert.run(MODEL, version, file, bytes, sha256, JSON.stringify(metrics), 'active', cur?.id ?? null, Date.now()).lastInsertRowid);
  })());
  return toVersion(db.prepare('SELECT * FROM model_versions WHERE id = ?').get(id) as Row);
}

/**
 * The serving file first (temp, fsync, rename), then the database; if the database refuses,
 * the previous file is put back, so the file and the active row never disagree for long.
 */
async function install<T>(ctx: RegistryContext, bytes: Buffer | undefined, commit: () => T): Promise<T> {
  const f = activeFile(ctx.dataDir);
  await mkdir(modelDir(ctx.dataDir), { recursive: true });
  const cur = active(ctx.db);
  const previous = cur ? blobOf(ctx.db, cur.id) : undefined;
  if (bytes) await writeFileAtomic(f, bytes); else await rm(f, { force: true });
  try {
    return commit();
  } catch (err) {
    if (previous) await writeFileAtomic(f, previous); else await rm(f, { force: true });
    throw err;
  }
}

/** Makes a stored version (retired or rejected) the active one, by hand. */
export async function activate(ctx: RegistryContext, version: number): Promise<ModelVersion> {
  const { db } = ctx;
  const r = db.prepare('SELECT * FROM model_versions WHERE model = ? AND version = ?').get(MODEL, version) as Row | undefined;
  if (!r) throw new YachayError('YCH_ERR_MODEL_MISSING', `rate model v${version} is not in this box's registry (\`yachay models list\`)`);
  if (r.status === 'active') return toVersion(r);
  const cur = active(db);
  await install(ctx, blobOf(db, r.id), () => db.transaction(() => {
    if (cur) db.prepare(`UPDATE model_versions SET status = 'retired' WHERE id = ?`).run(cur.id);
    db.prepare(`UPDATE model_versions SET status = 'active' WHERE id = ?`).run(r.id);
  })());
  return toVersion(db.prepare('SELECT * FROM model_versions WHERE id = ?').get(r.id) as Row);
}

export interface Rollback { retired: ModelVersion; restored?: ModelVersion | undefined }

/** Retires the active version and brings back the one it replaced (or the shipped model). */
export async function rollback(ctx: RegistryContext): Promise<Rollback> {
  const { db } = ctx;
  const cur = active(db);
  if (!cur) throw new YachayError('YCH_ERR_MODEL_MISSING', 'no rate model version of this box is active: nothing to roll back (the shipped model serves)');
  if (cur.parent === null && !ctx.shipped) {
    throw new YachayError('YCH_ERR_MODEL_MISSING', `rate v${cur.version} has no previous version to go back to`);
  }
  const parent = cur.parent;
  await install(ctx, parent === null ? undefined : blobOf(db, parent), () => db.transaction(() => {
    db.prepare(`UPDATE model_versions SET status = 'retired' WHERE id = ?`).run(cur.id);
    if (parent !== null) db.prepare(`UPDATE model_versions SET status = 'active' WHERE id = ?`).run(parent);
  })());
  const get = (id: number): ModelVersion => toVersion(db.prepare('SELECT * FROM model_versions WHERE id = ?').get(id) as Row);
  return { retired: get(cur.id), restored: parent === null ? undefined : get(parent) };
}
