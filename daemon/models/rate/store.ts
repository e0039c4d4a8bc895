import { createReadStream } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Db } from '../../db/db.js';
import { YachayError } from '../../errors.js';
import type { ShotClass } from '../../optimize/shots.js';
import { FEATURE_COUNT, FEATURES_VERSION, SHOT_CLASSES } from './features.js';
import type { EncodeRow, Metric } from './sweep.js';

/**
 * Where the rate model's rows live: the `encodes` table on a box (every sweep it ran), and a
 * JSONL file in the repository (models/rate/dataset-v1.jsonl, the shipped training set). One
 * JSON object per line so a file can be appended to, diffed and concatenated.
 */
export const SHIPPED_DATASET = resolve(dirname(new URL(import.meta.url).pathname), '..', '..', '..', 'models', 'rate', 'dataset-v1.jsonl');

export function recordEncodes(db: Db, rows: readonly EncodeRow[]): number {
  const ins = db.prepare(`INSERT INTO encodes (lesson_id, source, shot_index, shot_class, features_json, settings_json, quality_json, bytes, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const now = Date.now();
  db.transaction(() => {
    for (const r of rows) {
      checkRow(r, 'recordEncodes');
      ins.run(r.lesson, r.source ?? null, r.shot, r.cls, JSON.stringify({ v: FEATURES_VERSION, x: r.features }),
        JSON.stringify(r.settings), JSON.stringify(r.quality), r.bytes, now);
    }
  })();
  return rows.length;
}

interface EncodeDbRow {
  lesson_id: string | null; source: string | null; shot_index: number | null; shot_class: string;
  features_json: string; settings_json: string; quality_json: string; bytes: number | null; created_at: number;
}

/** Every v1 row on the box, oldest first; rows of another feature version are left out. `at`: with created_at. */
export function loadDataset(db: Db, opts: { at?: boolean } = {}): EncodeRow[] {
  const out: EncodeRow[] = [];
  const rows = db.prepare('SELECT lesson_id, source, shot_index, shot_class, features_json, settings_json, quality_json, bytes, created_at FROM encodes ORDER BY id').all() as EncodeDbRow[];
  for (const r of rows) {
    const f = JSON.parse(r.features_json) as { v?: number; x?: number[] };
    if (f.v !== FEATURES_VERSION || !Array.isArray(f.x)) continue;
    out.push({
      lesson: r.lesson_id ?? 'unknown', source: r.source ?? undefined, shot: r.shot_index ?? -1, cls: r.shot_class as ShotClass,
      features: f.x, settings: JSON.parse(r.settings_json) as EncodeRow['settings'],
      quality: JSON.parse(r.quality_json) as EncodeRow['quality'], bytes: r.bytes ?? 0,
      // when it was recorded, for the person labels (labels.ts), only when asked
      ...(opts.at ? { at: r.created_at } : {}),
    });
  }
  return out;
}

/** One line of the JSONL file: the row plus the feature version it was computed with. */
export function toJsonLine(r: EncodeRow): string {
  const { source: _source, ...rest } = r; // absolute temp paths say nothing on another machine
  return JSON.stringify({ v: FEATURES_VERSION, ...rest });
}

export async function appendJsonl(file: string, rows: readonly EncodeRow[]): Promise<void> {
  if (rows.length === 0) return;
  for (const r of rows) checkRow(r, file);
  await mkdir(dirname(file), { recursive: true });
  await appendFile(file, rows.map(toJsonLine).join('\n') + '\n');
}

export function parseJsonLine(line: string, where: string): EncodeRow {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch (err) {
    throw new YachayError('YCH_ERR_INPUT_CORRUPT', `${where}: not JSON`, { cause: err });
  }
  if (o.v !== FEATURES_VERSION) throw new YachayError('YCH_ERR_INPUT_CORRUPT', `${where}: feature version ${String(o.v)}, this program reads v${FEATURES_VERSION}`);
  const r = o as unknown as EncodeRow;
  checkRow(r, where);
  return { lesson: r.lesson, shot: r.shot, cls: r.cls, features: r.features, settings: r.settings, quality: r.quality, bytes: r.bytes };
}

export async function readJsonl(file: string): Promise<EncodeRow[]> {
  const out: EncodeRow[] = [];
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      out.push(parseJsonLine(line, `${file}:${n}`));
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new YachayError('YCH_ERR_INPUT_MISSING', `dataset ${file} not found`, { cause: err });
    throw err;
  }
  return out;
}

/** Rows go in whole or not at all: a half-valid row would train the model on garbage. */
function checkRow(r: EncodeRow, where: string): void {
  const bad = (what: string): never => { throw new YachayError('YCH_ERR_INPUT_CORRUPT', `${where}: encode row ${what}`); };
  if (typeof r.lesson !== 'string' || r.lesson === '') bad('has no lesson');
  if (!SHOT_CLASSES.includes(r.cls)) bad(`has unknown class ${String(r.cls)}`);
  if (!Array.isArray(r.features) || r.features.length !== FEATURE_COUNT || !r.features.every(Number.isFinite)) bad(`needs ${FEATURE_COUNT} finite features`);
  const q = r.quality;
  if (!q || !(['ocr', 'ssim'] as Metric[]).includes(q.metric) || !Number.isFinite(q.value) || !Number.isFinite(q.floor)) bad('has no usable quality');
  if (!r.settings || !Number.isFinite(r.settings.qp)) bad('has no QP');
}
