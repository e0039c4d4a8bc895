import { join, resolve } from 'node:path';

/**
 * Where the rate model's registry keeps its files in the data folder. Apart from registry.ts
 * so predict.ts can find the active file without importing the registry, which imports it.
 */
const MODEL = 'rate';

export function modelDir(dataDir: string): string {
  return join(resolve(dataDir), 'models', MODEL);
}

export function activeFile(dataDir: string): string {
  return join(modelDir(dataDir), 'active.onnx');
}
