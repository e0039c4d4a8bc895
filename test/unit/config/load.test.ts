import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { envName, loadConfig } from '../../../daemon/config/load.js';
import { isYachayError } from '../../../daemon/errors.js';

t.test('defaults come from the schema and the result is frozen', async (t) => {
  const cfg = loadConfig({ env: {} });
  t.equal(cfg.dataDir, './.yachay');
  t.equal(cfg.optimize.preset, 'medium');
  t.equal(cfg.optimize.floors.ocrRatio, 0.97);
  t.ok(Object.isFrozen(cfg.optimize.floors));
});

t.test('env names are derived from key paths', async (t) => {
  t.equal(envName(['dataDir']), 'YACHAY_DATA_DIR');
  t.equal(envName(['optimize', 'floors', 'ocrRatio']), 'YACHAY_OPTIMIZE_FLOORS_OCR_RATIO');
});

t.test('file < env < flags', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ dataDir: '/from/file', optimize: { preset: 'fast', segmentSeconds: 4 } }));
  const cfg = loadConfig({ file, env: { YACHAY_OPTIMIZE_PRESET: 'medium' }, overrides: { dataDir: '/from/flag' } });
  t.equal(cfg.dataDir, '/from/flag');
  t.equal(cfg.optimize.preset, 'medium');
  t.equal(cfg.optimize.segmentSeconds, 4);
});

t.test('every problem is listed with its key, value and source', async (t) => {
  const err = (() => {
    try {
      loadConfig({ env: { YACHAY_OPTIMIZE_SEGMENT_SECONDS: '99', YACHAY_OPTIMIZE_PRESET: 'turbo' }, overrides: { bogus: 1 } });
    } catch (e) { return e; }
    return undefined;
  })();
  t.ok(isYachayError(err, 'YCH_ERR_CONFIG'));
  const msg = (err as Error).message;
  t.match(msg, /3 problems/);
  t.match(msg, /optimize\.segmentSeconds: must be <= 30 \(got 99; from YACHAY_OPTIMIZE_SEGMENT_SECONDS\)/);
  t.match(msg, /optimize\.preset: must be equal to one of the allowed values \(got "turbo"/);
  t.match(msg, /additional properties "bogus"/);
});

t.test('a broken config file names the file', async (t) => {
  const dir = t.testdir({ 'bad.json': '{ nope' });
  t.throws(() => loadConfig({ file: join(dir, 'bad.json'), env: {} }), /bad\.json is not valid JSON/);
  t.throws(() => loadConfig({ file: join(dir, 'missing.json'), env: {} }), /cannot read config file .*missing\.json/);
});
