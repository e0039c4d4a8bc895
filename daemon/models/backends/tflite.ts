import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { YachayError } from '../../errors.js';
import { REPO_ROOT } from '../../paths.js';
import { elementCount } from '../tensor.js';
import type { DType, InferenceSession, LoadOptions, Tensor, TensorData, TensorInfo } from '../runtime.js';

/**
 * TensorFlow Lite behind the common interface, through our own addon
 * (native/src/tflite/, yachay_tflite.node) on the C library that tfjs-tflite-node ships.
 * XNNPACK is on by default: it is what makes BlazeFace ~6x faster on a Pi-class CPU. The
 * addon runs every invoke on the libuv pool; this file only checks feeds, keeps one run at
 * a time per session (a TFLite interpreter is not re-entrant) and maps errors to our codes.
 */
export type Accelerator = 'xnnpack' | 'none';

export interface TfliteLoadOptions extends LoadOptions {
  /** 'none' measures or works around XNNPACK; default from YACHAY_TFLITE_XNNPACK (0 = off), else on */
  accelerator?: Accelerator;
}

export interface TfliteSession extends InferenceSession {
  /** what actually runs the graph: 'none' when XNNPACK was off or refused the model */
  readonly accelerator: Accelerator;
  /** why the accelerator is 'none' (empty when XNNPACK runs) */
  readonly acceleratorNote: string;
}

interface NativeInfo { name: string; dtype: string; shape: number[] }
interface NativeOutput { data: TensorData; shape: number[] }
interface NativeSession {
  readonly accelerator: string;
  readonly delegateNote: string;
  readonly inputs: NativeInfo[];
  readonly outputs: NativeInfo[];
  run(inputs: TensorData[]): Promise<NativeOutput[]>;
  dispose(): void;
}
interface Addon {
  version(): string;
  Session: new (path: string, threads: number, xnnpack: boolean) => NativeSession;
}
type NativeError = Error & { code?: string };

const DTYPES: readonly DType[] = ['float32', 'int32', 'int64', 'uint8'];
const ARRAY_OF: Record<DType, string> = {
  float32: 'Float32Array', int32: 'Int32Array', int64: 'BigInt64Array', uint8: 'Uint8Array',
};

function candidates(): string[] {
  const build = join(REPO_ROOT, 'native', 'build');
  const list = [join(build, 'Release', 'yachay_tflite.node'), join(build, 'Debug', 'yachay_tflite.node')];
  // explicit override first, like better-sqlite3's nativeBinding: tests and cross builds
  const env = process.env.YACHAY_TFLITE_PATH;
  return env ? [env, ...list] : list;
}

let addon: Addon | undefined;

/** The addon, loaded once; one error listing every path tried when it does not load. */
export function loadTfliteAddon(): Addon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const p of candidates()) {
    try {
      addon = require(p) as Addon;
      return addon;
    } catch (err) {
      tried.push(`  ${p}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new YachayError('YCH_ERR_MODEL_BACKEND', [
    `TensorFlow Lite addon not loadable on ${process.platform}-${process.arch}; tried:`, ...tried,
    'fix: npm run build:native (needs g++, make, python3 and node_modules/tfjs-tflite-node)',
  ].join('\n'));
}

function defaultAccelerator(): Accelerator {
  return process.env.YACHAY_TFLITE_XNNPACK === '0' ? 'none' : 'xnnpack';
}

export async function loadTflite(file: string, opts: TfliteLoadOptions = {}): Promise<TfliteSession> {
  const lib = loadTfliteAddon();
  if (!existsSync(file)) {
    throw new YachayError('YCH_ERR_MODEL_MISSING', `model file not found: ${file}`);
  }
  const threads = Math.max(1, Math.floor(opts.threads ?? 1));
  const accel = opts.accelerator ?? defaultAccelerator();
  let native: NativeSession;
  try {
    native = new lib.Session(file, threads, accel === 'xnnpack');
  } catch (err) {
    const e = err as NativeError;
    if (e.code === 'MODEL') {
      throw new YachayError('YCH_ERR_MODEL_CORRUPT', `${file} cannot be parsed as a TensorFlow Lite model (${e.message})`, { cause: err });
    }
    throw new YachayError('YCH_ERR_MODEL_BACKEND', `TensorFlow Lite cannot run ${file}: ${e.message}`, { cause: err });
  }
  const unsupported = [...native.inputs, ...native.outputs].find((t) => !DTYPES.includes(t.dtype as DType));
  if (unsupported) {
    native.dispose();
    throw new YachayError('YCH_ERR_MODEL_BACKEND',
      `${file}: tensor ${unsupported.name} is ${unsupported.dtype}; this backend supports ${DTYPES.join(', ')}`);
  }
  return new Session(native, file);
}

class Session implements TfliteSession {
  readonly backend = 'tflite' as const;
  readonly accelerator: Accelerator;
  readonly acceleratorNote: string;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  private tail: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(private readonly native: NativeSession, private readonly file: string) {
    this.accelerator = native.accelerator === 'xnnpack' ? 'xnnpack' : 'none';
    this.acceleratorNote = native.delegateNote;
    const freeze = (l: NativeInfo[]): readonly TensorInfo[] =>
      Object.freeze(l.map((t) => Object.freeze({ name: t.name, dtype: t.dtype as DType, shape: [...t.shape] })));
    this.inputs = freeze(native.inputs);
    this.outputs = freeze(native.outputs);
  }

  /** Inputs are read when the run starts (after earlier runs on this session): do not change them before it resolves. */
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    if (this.disposed) return Promise.reject(this.runError('the session was disposed; load the model again'));
    let ordered: TensorData[];
    try {
      ordered = this.order(feeds);
    } catch (err) {
      return Promise.reject(err);
    }
    const result = this.tail.then(() => this.native.run(ordered));
    this.tail = result.catch(() => undefined);
    return result.then(
      (outs) => Object.fromEntries(outs.map((o, i) => {
        const info = this.outputs[i]!;
        return [info.name, { dtype: info.dtype, shape: o.shape, data: o.data }];
      })),
      (err: NativeError) => {
        throw this.runError(err.code === 'DISPOSED' ? 'the session was disposed; load the model again' : err.message, err);
      },
    );
  }

  /** Waits for runs already queued, then frees interpreter, delegate and model. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.tail;
    this.native.dispose();
  }

  /** Feeds in the model's input order, each checked against its TensorInfo. */
  private order(feeds: Record<string, Tensor>): TensorData[] {
    const known = new Set(this.inputs.map((i) => i.name));
    const extra = Object.keys(feeds).filter((k) => !known.has(k));
    if (extra.length) {
      throw this.runError(`unknown input ${extra.join(', ')}; the model takes ${[...known].join(', ')}`);
    }
    return this.inputs.map((info) => {
      const t = feeds[info.name];
      if (!t) throw this.runError(`input ${info.name} missing; the model takes ${[...known].join(', ')}`);
      const want = `${info.dtype} [${info.shape.join(',')}]`;
      if (t.dtype !== info.dtype || t.data?.constructor?.name !== ARRAY_OF[info.dtype]) {
        throw this.runError(`input ${info.name}: expected ${want}, got ${t.dtype} (${t.data?.constructor?.name})`);
      }
      const sameShape = t.shape.length === info.shape.length && t.shape.every((d, i) => d === info.shape[i]);
      if (!sameShape) throw this.runError(`input ${info.name}: expected ${want}, got shape [${t.shape.join(',')}]`);
      if (t.data.length !== elementCount(info.shape)) {
        throw this.runError(`input ${info.name}: expected ${elementCount(info.shape)} values for ${want}, got ${t.data.length}`);
      }
      return t.data;
    });
  }

  private runError(message: string, cause?: unknown): YachayError {
    return new YachayError('YCH_ERR_MODEL_RUN', `${this.file}: ${message}`, cause === undefined ? {} : { cause });
  }
}
