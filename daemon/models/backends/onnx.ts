import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { YachayError } from '../../errors.js';
import type { DType, InferenceSession, LoadOptions, RecurrentResult, RecurrentRun, Tensor, TensorInfo } from '../runtime.js';
import { elementCount } from '../tensor.js';

/**
 * ONNX Runtime (onnxruntime-node, CPU) behind the common interface. Each session lives in its
 * own worker thread (onnx-worker.mjs): ORT runs a model on the thread that calls it, and the
 * box's main thread also serves 30 phones. The worker is unref'd while idle, so a session that
 * is never disposed does not keep a CLI process alive.
 */
interface Pending { resolve: (v: Record<string, Tensor>) => void; reject: (e: Error) => void }

type FromWorker =
  | { type: 'ready'; inputs: TensorInfo[]; outputs: TensorInfo[] }
  | { type: 'error'; kind: 'backend' | 'corrupt'; message: string }
  | { type: 'result'; id: number; outputs?: Record<string, Tensor>; error?: string }
  | { type: 'disposed' };

const WORKER = new URL('./onnx-worker.mjs', import.meta.url);

class OnnxSession implements InferenceSession {
  readonly backend = 'onnx' as const;
  readonly accelerator = 'cpu';
  private next = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(private readonly worker: Worker, private readonly file: string,
    readonly inputs: readonly TensorInfo[], readonly outputs: readonly TensorInfo[]) {
    worker.on('message', (m: FromWorker) => {
      if (m.type !== 'result') return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (m.error !== undefined) p.reject(new YachayError('YCH_ERR_MODEL_RUN', `ONNX model ${file}: ${m.error}`));
      else p.resolve(m.outputs!);
    });
    worker.on('exit', () => this.failAll('the ONNX worker stopped'));
    worker.on('error', (e) => this.failAll(`the ONNX worker failed: ${e.message}`));
    worker.unref();
  }

  private failAll(why: string): void {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new YachayError('YCH_ERR_MODEL_RUN', `ONNX model ${this.file}: ${why}`));
    this.pending.clear();
  }

  run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
    return this.send(feeds, (id) => ({ type: 'run', id, feeds }));
  }

  async scan(r: RecurrentRun): Promise<RecurrentResult> {
    const size = elementCount(r.shape);
    const first = { ...r.constants, [r.input]: { dtype: 'float32' as const, shape: r.shape, data: r.windows.subarray(0, size) }, [r.stateIn]: r.state };
    const out = await this.send(first, (id) => ({ type: 'scan', id, run: r }));
    return { values: out.values!.data as Float32Array, state: out.state! };
  }

  /** checks the (first step's) feeds, then posts the message built for a fresh id */
  private send(feeds: Record<string, Tensor>, message: (id: number) => object): Promise<Record<string, Tensor>> {
    if (this.closed) return Promise.reject(new YachayError('YCH_ERR_MODEL_RUN', `ONNX model ${this.file}: session already disposed`));
    try {
      checkFeeds(this.file, this.inputs, feeds);
    } catch (err) {
      return Promise.reject(err);
    }
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage(message(id));
    });
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.worker.ref();
    const gone = new Promise<void>((res) => this.worker.once('exit', () => res()));
    this.worker.postMessage({ type: 'dispose' });
    // a worker stuck in a long run is terminated rather than waited for
    const timer = setTimeout(() => void this.worker.terminate(), 2000);
    await gone;
    clearTimeout(timer);
  }
}

/** Names, dtypes and fixed dimensions are checked here, so the error names the input. */
function checkFeeds(file: string, inputs: readonly TensorInfo[], feeds: Record<string, Tensor>): void {
  for (const info of inputs) {
    const t = feeds[info.name];
    if (!t) throw new YachayError('YCH_ERR_MODEL_RUN', `ONNX model ${file}: input "${info.name}" missing (given: ${Object.keys(feeds).join(', ') || 'none'})`);
    if (t.dtype !== info.dtype) throw new YachayError('YCH_ERR_MODEL_RUN', `ONNX model ${file}: input "${info.name}" must be ${info.dtype}, got ${t.dtype}`);
    const fits = t.shape.length === info.shape.length && info.shape.every((d, i) => d < 0 || d === t.shape[i]);
    if (!fits) throw new YachayError('YCH_ERR_MODEL_RUN', `ONNX model ${file}: input "${info.name}" must have shape [${info.shape.join(',')}], got [${t.shape.join(',')}]`);
    if (t.data.length !== elementCount(t.shape)) throw new YachayError('YCH_ERR_MODEL_RUN', `ONNX model ${file}: input "${info.name}" has ${t.data.length} values for shape [${t.shape.join(',')}]`);
  }
}

export async function loadOnnx(file: string, opts: LoadOptions): Promise<InferenceSession> {
  if (!existsSync(file)) throw new YachayError('YCH_ERR_MODEL_MISSING', `ONNX model file ${file} not found`);
  const worker = new Worker(WORKER, { workerData: { file, threads: opts.threads ?? 1 } });
  const first = await new Promise<FromWorker>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before loading`)));
  }).catch((err: Error) => ({ type: 'error', kind: 'backend', message: err.message }) as FromWorker);
  if (first.type === 'ready') {
    worker.removeAllListeners('error');
    worker.removeAllListeners('exit');
    return new OnnxSession(worker, file, first.inputs.map(asInfo), first.outputs.map(asInfo));
  }
  await worker.terminate().catch(() => undefined);
  const msg = first.type === 'error' ? first.message : `unexpected message ${first.type}`;
  if (first.type === 'error' && first.kind === 'corrupt') {
    throw new YachayError('YCH_ERR_MODEL_CORRUPT', `ONNX model ${file} cannot be loaded: ${msg}`);
  }
  throw new YachayError('YCH_ERR_MODEL_BACKEND', `ONNX Runtime is not usable: ${msg}`);
}

function asInfo(i: TensorInfo): TensorInfo {
  return { name: i.name, dtype: i.dtype as DType, shape: i.shape };
}
