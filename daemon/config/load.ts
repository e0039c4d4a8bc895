import { readFileSync } from 'node:fs';
import Ajv from 'ajv';
import { configSchema } from './schema.js';
import type { Config } from './schema.js';
import { YachayError } from '../errors.js';

type Json = Record<string, unknown>;
interface SchemaNode { type?: string; properties?: Record<string, SchemaNode> }

export interface LoadOptions {
  /** JSON config file; missing is fine only when it was not asked for explicitly */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** values from CLI flags, highest precedence, as a partial config object */
  overrides?: Json;
}

/** `dataDir` → DATA_DIR; `optimize.floors.ocrRatio` → YACHAY_OPTIMIZE_FLOORS_OCR_RATIO */
export function envName(path: string[]): string {
  return 'YACHAY_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');
}

function leaves(node: SchemaNode, path: string[] = []): Array<{ path: string[]; type: string }> {
  if (node.type === 'object' && node.properties) {
    return Object.entries(node.properties).flatMap(([k, v]) => leaves(v, [...path, k]));
  }
  return [{ path, type: node.type ?? 'string' }];
}

function setPath(obj: Json, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    if (typeof cur[key] !== 'object' || cur[key] === null) cur[key] = {};
    cur = cur[key] as Json;
  }
  cur[path[path.length - 1]!] = value;
}

function merge(base: Json, over: Json): Json {
  for (const [k, v] of Object.entries(over)) {
    if (v && typeof v === 'object' && !Array.isArray(v) && base[k] && typeof base[k] === 'object') {
      merge(base[k] as Json, v as Json);
    } else if (v !== undefined) {
      base[k] = v;
    }
  }
  return base;
}

function deepFreeze<T>(obj: T): T {
  if (obj && typeof obj === 'object') {
    for (const v of Object.values(obj)) deepFreeze(v);
    Object.freeze(obj);
  }
  return obj;
}

/** Where each env value came from, so an error can say "from YACHAY_…" */
function fromEnv(env: NodeJS.ProcessEnv, origin: Map<string, string>): Json {
  const out: Json = {};
  for (const leaf of leaves(configSchema as SchemaNode)) {
    const name = envName(leaf.path);
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    let value: unknown = raw;
    if (leaf.type === 'integer' || leaf.type === 'number') value = raw.trim() === '' ? raw : Number(raw);
    if (leaf.type === 'boolean') value = raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
    setPath(out, leaf.path, Number.isNaN(value) ? raw : value);
    origin.set('/' + leaf.path.join('/'), name);
  }
  return out;
}

/** defaults → file → YACHAY_* env → CLI flags → validate (all errors) → freeze */
export function loadConfig(opts: LoadOptions = {}): Readonly<Config> {
  const env = opts.env ?? process.env;
  const origin = new Map<string, string>();
  let fileCfg: Json = {};
  const file = opts.file ?? env.YACHAY_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new YachayError('YCH_ERR_CONFIG', `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      fileCfg = JSON.parse(text) as Json;
    } catch (err) {
      throw new YachayError('YCH_ERR_CONFIG', `config file ${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  const merged = merge(merge(merge({}, fileCfg), fromEnv(env, origin)), opts.overrides ?? {});
  const ajv = new Ajv.default({ allErrors: true, useDefaults: true, strict: false });
  const validate = ajv.compile(configSchema);
  if (!validate(merged)) {
    const where = file ? file : 'the configuration';
    const problems = (validate.errors ?? []).map((e) => {
      const key = (e.instancePath || '/').slice(1).replaceAll('/', '.') || '(top level)';
      const extra = e.keyword === 'additionalProperties' ? ` "${String(e.params.additionalProperty)}"` : '';
      const src = origin.get(e.instancePath);
      const got = e.instancePath ? ` (got ${JSON.stringify(valueAt(merged, e.instancePath))}${src ? `; from ${src}` : ''})` : '';
      return `  - ${key}: ${e.message ?? 'invalid'}${extra}${got}`;
    });
    throw new YachayError('YCH_ERR_CONFIG',
      `refusing to start, ${where} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.join('\n')}`);
  }
  return deepFreeze(merged as unknown as Config);
}

/** The schema's defaults alone (no file, no environment): for tools that run without a box config. */
export function configDefaults(): Readonly<Config> {
  return loadConfig({ env: {} });
}

function valueAt(obj: Json, pointer: string): unknown {
  return pointer.split('/').slice(1).reduce<unknown>((cur, k) => (cur as Json | undefined)?.[k], obj);
}
