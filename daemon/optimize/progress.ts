/**
 * Long jobs report progress: a bar when a person watches a terminal, one JSON object per line
 * when a script or the job queue reads it. Both go to stderr so stdout carries only results.
 */
export interface Progress {
  stage(name: string, weight: number): void;
  /** fraction 0..1 within the current stage */
  update(fraction: number): void;
  done(): void;
}

const STAGES_LABEL: Record<string, string> = {
  probe: 'analizando / probing', analyse: 'analizando / analysing', plan: 'planificando / planning',
  encode: 'codificando / encoding', verify: 'verificando / verifying', publish: 'publicando / publishing',
};

export function createProgress(stream: NodeJS.WriteStream = process.stderr, quiet = false): Progress {
  const tty = Boolean(stream.isTTY);
  let base = 0; let weight = 0; let name = ''; let last = -1; let lastAt = 0;
  const emit = (fraction: number, force = false): void => {
    if (quiet) return;
    const total = Math.min(1, base + weight * Math.min(1, Math.max(0, fraction)));
    const pct = Math.floor(total * 100);
    const now = Date.now();
    if (!force && (pct === last || now - lastAt < (tty ? 100 : 1000))) return;
    last = pct; lastAt = now;
    if (tty) {
      const width = 30;
      const filled = Math.round(total * width);
      stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${STAGES_LABEL[name] ?? name}   `);
    } else {
      stream.write(JSON.stringify({ progress: Number(total.toFixed(3)), stage: name }) + '\n');
    }
  };
  return {
    stage(n, w) { base += weight; weight = w; name = n; emit(0, true); },
    update(f) { emit(f); },
    done() {
      base = 1; weight = 0; emit(1, true);
      if (tty && !quiet) stream.write('\n');
    },
  };
}
