// ONNX Runtime session in a worker thread. onnxruntime-node's run() executes on the calling
// thread, so a model run on the main thread would stall the LAN server for its whole duration;
// here it only stalls this worker. Plain JS: a worker does not inherit the TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';

const DTYPES = { float32: 'float32', int32: 'int32', int64: 'int64', uint8: 'uint8' };

function post(msg) { parentPort.postMessage(msg); }

let session;
try {
  let ort;
  try {
    const mod = await import('onnxruntime-node');
    ort = mod.default ?? mod;
  } catch (err) {
    post({ type: 'error', kind: 'backend', message: `onnxruntime-node cannot be loaded: ${err.message}` });
    process.exit(0);
  }
  try {
    session = await ort.InferenceSession.create(workerData.file, {
      executionProviders: ['cpu'],
      intraOpNumThreads: workerData.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
  } catch (err) {
    post({ type: 'error', kind: 'corrupt', message: err.message });
    process.exit(0);
  }
  const meta = (list) => list.map((m) => ({
    name: m.name,
    dtype: m.isTensor ? (DTYPES[m.type] ?? m.type) : 'non-tensor',
    shape: m.isTensor ? m.shape.map((d) => (typeof d === 'number' ? d : -1)) : [],
  }));
  post({ type: 'ready', inputs: meta(session.inputMetadata), outputs: meta(session.outputMetadata) });

  parentPort.on('message', async (msg) => {
    if (msg.type === 'dispose') {
      await session.release().catch(() => undefined);
      post({ type: 'disposed' });
      process.exit(0);
    }
    if (msg.type !== 'run' && msg.type !== 'scan') return;
    try {
      const outputs = msg.type === 'run' ? await run(msg.feeds) : await scan(msg.run);
      const out = {};
      const transfer = [];
      for (const [name, v] of Object.entries(outputs)) {
        // a copy we own, moved (not cloned) to the main thread
        const data = v.data.slice();
        out[name] = { dtype: DTYPES[v.type] ?? v.type, shape: Array.from(v.dims), data };
        transfer.push(data.buffer);
      }
      parentPort.postMessage({ type: 'result', id: msg.id, outputs: out }, transfer);
    } catch (err) {
      post({ type: 'result', id: msg.id, error: err.message });
    }
  });

  const tensor = (t) => new ort.Tensor(t.dtype, t.data, t.shape);

  async function run(feeds) {
    const f = {};
    for (const [name, t] of Object.entries(feeds)) f[name] = tensor(t);
    return session.run(f);
  }

  // runRecurrent() in runtime.ts, looped here: one message for many steps instead of one each
  async function scan(r) {
    const size = r.shape.reduce((n, d) => n * d, 1);
    const steps = r.windows.length / size;
    let values = new Float32Array(0);
    const constants = {};
    for (const [name, t] of Object.entries(r.constants)) constants[name] = tensor(t);
    let state = tensor(r.state);
    for (let i = 0; i < steps; i++) {
      const input = new ort.Tensor('float32', r.windows.slice(i * size, (i + 1) * size), r.shape);
      const res = await session.run({ ...constants, [r.input]: input, [r.stateIn]: state });
      if (!res[r.output] || !res[r.stateOut]) throw new Error(`the model returned no "${r.output}" or "${r.stateOut}"`);
      const out = res[r.output].data;
      if (i === 0) values = new Float32Array(steps * out.length);
      for (let k = 0; k < out.length; k++) values[i * out.length + k] = Number(out[k]);
      state = res[r.stateOut];
    }
    return { values: new ort.Tensor('float32', values, [values.length]), state };
  }
} catch (err) {
  post({ type: 'error', kind: 'backend', message: err.message });
}
