import { createRequire } from 'node:module';
import type { onnx as OnnxNs } from 'onnx-proto';
import type { ShotClass } from '../../optimize/shots.js';
import { SHOT_CLASSES } from './features.js';

/**
 * What a rate model file says about itself beyond its weights. Apart from onnx-export.ts so
 * predict.ts can read it without importing the exporter, which imports predict.ts.
 */
const { onnx } = createRequire(import.meta.url)('onnx-proto') as { onnx: typeof OnnxNs };

/** metadata key naming the classes whose frame rate the model has learnt (RateNet.fpsClasses) */
export const FPS_CLASSES_KEY = 'fps_classes';

/**
 * The classes a rate model file says it learnt frame rates for; none for a file without the
 * key (every model trained before the fps sweep) or one that is not ours.
 */
export function fpsClassesOfFile(bytes: Uint8Array): ShotClass[] {
  try {
    const m = onnx.ModelProto.decode(bytes);
    const v = m.metadataProps?.find((p) => p.key === FPS_CLASSES_KEY)?.value;
    const parsed: unknown = v ? JSON.parse(v) : [];
    return Array.isArray(parsed) ? parsed.filter((c): c is ShotClass => SHOT_CLASSES.includes(c as ShotClass)) : [];
  } catch {
    return [];
  }
}
