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

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

export function float32(shape: number[], data: Float32Array | number[]): Tensor {
  const d = data instanceof Float32Array ? data : Float32Array.from(data);
  if (d.length !== elementCount(shape)) throw new RangeError(`float32 tensor: ${d.length} values for shape [${shape.join(',')}]`);
  return { dtype: 'float32', shape, data: d };
}
