import { YachayError } from '../errors.js';
import { elementCount } from './tensor.js';

/**
 * One small interface over the two inference backends the box carries: TensorFlow Lite (our
 * own addon on libtensorflowlite_c, XNNPACK on) and ONNX Runtime (onnxruntime-node, CPU).
 * Callers never see which one runs a model: the manifest says, `loadModel` picks.
 * Every `run` is asynchronous and happens off the event loop (a worker thread in the backend),
 * so the LAN server keeps answering while a model runs on a Pi.
 */
export type Backend = 'tflite' | 'onnx';

export type DType = 'float32' | 'int32' | 'int64' | 'uint8';

export type TensorData = Float32Array | Int32Array | BigInt64Array | Uint8Array;

export interface Tensor {
  dtype: DType;
  /** dimensions; a scalar is [] */
  shape: number[];
  data: TensorData;
}

export interface TensorInfo {
  name: string;
  dtype: DType;
  /** -1 (or a symbolic name turned into -1) where the model leaves a dimension open */
  shape: number[];
}

export interface InferenceSession {
  readonly backend: Backend;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  /** feeds by input name; returns every output by name */
  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  /** frees the native session; later calls to run() reject */
  dispose(): Promise<void>;
  /** runRecurrent() in one call where the backend can loop by itself (the ONNX worker) */
  scan?(r: RecurrentRun): Promise<RecurrentResult>;
}

/**
 * Steps of a recurrent model (Silero VAD): step i feeds `windows[i]` to `input`, the state
 * from step i-1 to `stateIn`, and the `constants`; it keeps the values of `output` (one per
 * batch lane) and the `stateOut` output as the next state.
 */
export interface RecurrentRun {
  input: string;
  /** the steps' windows one after another, each `shape`'s element count long */
  windows: Float32Array;
  shape: number[];
  constants: Record<string, Tensor>;
  stateIn: string;
  stateOut: string;
  state: Tensor;
  output: string;
}

export interface RecurrentResult {
  /** `output`'s values, step after step (one per lane each) */
  values: Float32Array;
  /** the state after the last step, for the next call */
  state: Tensor;
}

/**
 * Runs the steps with one message to the backend's thread when it can loop there (a round
 * trip per 32 ms step made the VAD's cost mostly messaging), else one run() per step.
 */
export async function runRecurrent(session: InferenceSession, r: RecurrentRun): Promise<RecurrentResult> {
  if (session.scan) return session.scan(r);
  const size = elementCount(r.shape);
  const steps = r.windows.length / size;
  let values = new Float32Array(0);
  let state = r.state;
  for (let i = 0; i < steps; i++) {
    const input: Tensor = { dtype: 'float32', shape: r.shape, data: r.windows.slice(i * size, (i + 1) * size) };
    const res = await session.run({ ...r.constants, [r.input]: input, [r.stateIn]: state });
    const out = res[r.output]?.data;
    const next = res[r.stateOut];
    if (!out || !next) throw new YachayError('YCH_ERR_MODEL_RUN', `the model returned no "${r.output}" or "${r.stateOut}"`);
    if (i === 0) values = new Float32Array(steps * out.length);
    for (let k = 0; k < out.length; k++) values[i * out.length + k] = Number(out[k]);
    state = next;
  }
  return { values, state };
}

export interface LoadOptions {
  /** intra-op threads; 1 by default (a Pi also encodes video at the same time) */
  threads?: number;
}

export type Loader = (file: string, opts: LoadOptions) => Promise<InferenceSession>;

/** Loads a model file with the named backend (imported only when first used). */
export async function loadModel(backend: Backend, file: string, opts: LoadOptions = {}): Promise<InferenceSession> {
  const o = { threads: 1, ...opts };
  if (backend === 'onnx') {
    const { loadOnnx } = await import('./backends/onnx.js');
    return loadOnnx(file, o);
  }
  const { loadTflite } = await import('./backends/tflite.js');
  return loadTflite(file, o);
}


export function float32(shape: number[], data: Float32Array | number[]): Tensor {
  const d = data instanceof Float32Array ? data : Float32Array.from(data);
  if (d.length !== elementCount(shape)) throw new RangeError(`float32 tensor: ${d.length} values for shape [${shape.join(',')}]`);
  return { dtype: 'float32', shape, data: d };
}
