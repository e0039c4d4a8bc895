import { performance } from 'node:perf_hooks';
import { isYachayError } from '../errors.js';
import { checkSignature, loadManifest, modelPath, verifiedFile, type Manifest, type ModelEntry } from './manifest.js';
import { loadModel, type Tensor, type TensorInfo } from './runtime.js';
import { elementCount } from './tensor.js';

/**
 * `yachay models check`: every model in the manifest is found, hashed, loaded by its backend,
 * compared with its declared signature and run a few times on a built-in sample. What a
 * technician runs when a box plans badly; what CI runs so a moved pin cannot slip through.
 */
export interface ModelCheck {
  id: string;
  backend: string;
  accelerator?: string | undefined;
  file: string;
  ok: boolean;
  loadMs?: number;
  /** median of the timed runs */
  runMs?: number;
  error?: string;
}

/** A deterministic sample of the declared shape: a smooth wave, so no model sees only zeros. */
export function sampleTensor(info: TensorInfo, overrides: Record<string, number> = {}): Tensor {
  const shape = info.shape.map((d) => (d < 0 ? 1 : d));
  const n = elementCount(shape);
  const fixed = overrides[info.name];
  switch (info.dtype) {
    case 'float32': return { dtype: 'float32', shape, data: Float32Array.from({ length: n }, (_, i) => fixed ?? 0.5 * Math.sin(i * 0.37)) };
    case 'int64': return { dtype: 'int64', shape, data: BigInt64Array.from({ length: n }, () => BigInt(fixed ?? 0)) };
    case 'int32': return { dtype: 'int32', shape, data: Int32Array.from({ length: n }, () => fixed ?? 0) };
    case 'uint8': return { dtype: 'uint8', shape, data: Uint8Array.from({ length: n }, (_, i) => fixed ?? (i * 7) % 256) };
  }
}

/** Inputs that must hold a specific value for the sample run to mean anything. */
const SAMPLE_VALUES: Record<string, Record<string, number>> = {
  // Silero takes the sample rate as an input; anything but 8000/16000 is refused
  vad: { sr: 16000, state: 0 },
};

export async function checkModel(e: ModelEntry, runs = 5): Promise<ModelCheck> {
  const out: ModelCheck = { id: e.id, backend: e.backend, file: modelPath(e), ok: false };
  try {
    const file = verifiedFile(e);
    const t0 = performance.now();
    const session = await loadModel(e.backend, file);
    out.loadMs = performance.now() - t0;
    out.accelerator = (session as { accelerator?: string }).accelerator;
    try {
      checkSignature(e, session);
      const feeds = Object.fromEntries(e.inputs.map((i) => [i.name, sampleTensor(i, SAMPLE_VALUES[e.id])]));
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t = performance.now();
        const res = await session.run(feeds);
        times.push(performance.now() - t);
        for (const o of e.outputs) {
          const got = res[o.name];
          if (!got) throw new Error(`output ${o.name} missing from the result`);
          if (got.data instanceof Float32Array && got.data.some((v) => !Number.isFinite(v))) {
            throw new Error(`output ${o.name} holds NaN or infinity on the sample`);
          }
        }
      }
      times.sort((a, b) => a - b);
      out.runMs = times[Math.floor(times.length / 2)]!;
      out.ok = true;
    } finally {
      await session.dispose();
    }
  } catch (err) {
    out.error = isYachayError(err) ? `${err.message} (${err.code})` : (err as Error).message;
  }
  return out;
}

export async function checkModels(manifest: Manifest = loadManifest()): Promise<ModelCheck[]> {
  const out: ModelCheck[] = [];
  for (const e of manifest.models) out.push(await checkModel(e));
  return out;
}

export function formatChecks(checks: ModelCheck[]): string {
  const rows = checks.map((c) => [
    c.ok ? 'ok' : 'FALLA/FAIL', c.id, c.backend + (c.accelerator ? `+${c.accelerator}` : ''),
    c.loadMs === undefined ? '-' : `${c.loadMs.toFixed(0)} ms`,
    c.runMs === undefined ? '-' : `${c.runMs.toFixed(2)} ms`,
    c.ok ? c.file : (c.error ?? ''),
  ]);
  const head = ['estado/state', 'modelo/model', 'backend', 'carga/load', 'por llamada/per call', 'archivo/file'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((x, i) => (i === r.length - 1 ? x : x.padEnd(widths[i]!))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}
