import t from 'tap';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configSchema } from '../../../daemon/config/schema.js';
import type { Config, GovernorConfig, JobsConfig, OptimizeConfig } from '../../../daemon/config/schema.js';
import { configDefaults, loadConfig } from '../../../daemon/config/load.js';
import { sourceFiles } from '../../helpers/import-graph.js';

// issue 12 item 6: config types derived from the schema, defaults written once (in the schema)

interface Node { type?: string; default?: unknown; properties?: Record<string, Node> }

function withoutDefault(node: Node, path: string[] = []): string[] {
  return Object.entries(node.properties ?? {}).flatMap(([k, v]) => [
    ...(v.default === undefined ? [[...path, k].join('.')] : []),
    ...withoutDefault(v, [...path, k]),
  ]);
}

// Compile-time checks (npm run typecheck): they stop compiling if a type drifts from the schema.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
const governorAlwaysThere: Equal<undefined extends JobsConfig['governor'] ? true : false, false> = true;
const governorShape: Equal<GovernorConfig, { thermalFiles: string[]; throttledFile: string; hotC: number; resumeC: number; intervalMs: number }> = true;
const presetFromEnum: Equal<OptimizeConfig['preset'], 'ultrafast' | 'superfast' | 'veryfast' | 'faster' | 'fast' | 'medium' | 'slow'> = true;
const logLevels: Equal<Config['log']['level'], 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'> = true;

t.test('the types are the schema\'s: every key has a default, so every key is present', async (t) => {
  t.ok(governorAlwaysThere && governorShape && presetFromEnum && logLevels);
  t.same(withoutDefault(configSchema as Node), [], 'no key relies on being optional');
});

t.test('the loader fills the governor from the schema: JobsConfig.governor is never missing', async (t) => {
  const g = configSchema.properties.jobs.properties.governor.properties;
  const cfg = loadConfig({ env: {} });
  t.same(cfg.jobs.governor, {
    thermalFiles: g.thermalFiles.default, throttledFile: g.throttledFile.default, hotC: g.hotC.default,
    resumeC: g.resumeC.default, intervalMs: g.intervalMs.default,
  });
  t.same(loadConfig({ env: { YACHAY_JOBS_GOVERNOR_HOT_C: '85' } }).jobs.governor.thermalFiles, g.thermalFiles.default,
    'one key set, the others still defaulted');
  t.same(configDefaults().optimize.floors, { ocrRatio: 0.97, ssimTalkingHead: 0.95, ssimMotion: 0.75, stoi: 0.96 });
});

t.test('no default or config type is written a second time in daemon/', async (t) => {
  const daemon = fileURLToPath(new URL('../../../daemon', import.meta.url));
  for (const f of sourceFiles(daemon)) {
    const rel = relative(daemon, f);
    if (rel === 'config/schema.ts') continue;
    const text = readFileSync(f, 'utf8');
    t.notMatch(text, /thermal_zone0|DEFAULT_GOVERNOR/, `${rel}: the governor's defaults live in the schema`);
    t.notMatch(text, /ocrRatio: 0\.97/, `${rel}: the floors' defaults live in the schema`);
    t.notMatch(text, /\binterface (Config|HttpConfig|MqttConfig|JobsConfig|GovernorConfig|OptimizeConfig|ModelsConfig|Floors|SyncConfig)\b/,
      `${rel}: config types come from the schema`);
  }
});
