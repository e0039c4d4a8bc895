import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isYachayError } from '../../daemon/errors.js';
import { loadNative, loadNativeFrom, nativeCandidates } from '../../daemon/analysis/native.js';
import { reference } from '../../daemon/analysis/reference.js';

// The addon must equal the TypeScript reference: integers exactly, floats within 1e-3
// relative (SIMD paths take sqrt and sum in float lanes; the scalar path is bit-exact).
const native = loadNative();
const REL = 1e-3;

/** Deterministic xorshift32 so every run and every machine sees the same frames. */
function rng(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

type Pattern = 'noise' | 'smooth' | 'blocks' | 'extreme' | 'flat';
function frame(w: number, h: number, p: Pattern, seed: number): Uint8Array {
  const r = rng(seed);
  const f = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = p === 'noise' ? r() & 255
        : p === 'smooth' ? ((x * 3 + y * 2) % 256) + (r() % 5) - 2
        : p === 'blocks' ? (((x >> 3) + (y >> 3)) % 2 ? 255 : 0)
        : p === 'extreme' ? (r() & 1 ? 255 : 0)
        : 117;
      f[y * w + x] = Math.max(0, Math.min(255, v));
    }
  }
  return f;
}

function audio(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const noise = r() / 2 ** 31 - 1;
    x[i] = i % 97 < 4 ? 0 : 0.6 * Math.sin(i * 0.07) + 0.1 * noise;
  }
  return x;
}

/** |a-b| <= rel * max(|a|, |b|, scale): `scale` covers values that are differences. */
function near(a: number, b: number, rel = REL, scale = 0): boolean {
  return Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b), scale) + 1e-12;
}

/** First index where two arrays differ, -1 if equal (t.same is slow on 100k-element arrays). */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

const SIZES: [number, number][] = [[1, 1], [2, 2], [3, 3], [4, 3], [3, 4], [17, 5], [33, 17], [160, 90], [161, 91], [1280, 720]];
const PATTERNS: Pattern[] = ['noise', 'smooth', 'blocks', 'extreme'];

t.test(`active ISA is reported (${native.isa()})`, async t => {
  t.match(native.isa(), /^(avx2|sse2|neon|scalar)$/);
  t.equal(native, loadNative(), 'the loaded module is cached');
  if (process.env['YACHAY_SIMD']) return;
  // Unforced, dispatch must pick the best path this CPU has.
  const flags = process.platform === 'linux' ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  if (process.arch === 'arm64') t.equal(native.isa(), 'neon');
  if (process.arch === 'x64' && flags) t.equal(native.isa(), /\bavx2\b/.test(flags) ? 'avx2' : 'sse2');
});

t.test('frame kernels equal the TypeScript reference', async t => {
  for (const [w, h] of SIZES) {
    for (const p of PATTERNS) {
      const name = `${w}x${h} ${p}`;
      const a = frame(w, h, p, w * 31 + h);
      const b = frame(w, h, p, w + h * 977);
      t.equal(native.sad(a, b), reference.sad(a, b), `${name} sad`);
      t.equal(native.ti(a, b), reference.ti(a, b), `${name} ti`);
      t.equal(firstDiff(native.histogram(a), reference.histogram(a)), -1, `${name} histogram`);
      const small = native.downscale2x(a, w, h);
      t.equal(small.length, (w >> 1) * (h >> 1), `${name} downscale2x size`);
      t.equal(firstDiff(small, reference.downscale2x(a, w, h)), -1, `${name} downscale2x`);
      for (const thr of [-1, 0, 96, 100.5, 1e9]) {
        const n = native.sobel(a, w, h, thr);
        const r = reference.sobel(a, w, h, thr);
        t.equal(n.edgeDensity, r.edgeDensity, `${name} edgeDensity t=${thr}`);
        t.ok(near(n.si, r.si), `${name} si t=${thr}: ${n.si} vs ${r.si}`);
      }
    }
  }
});

t.test('frameFeatures equals the reference, frame by frame', async t => {
  for (const [w, h] of [[1, 1], [3, 3], [17, 5], [160, 90], [161, 91]] as const) {
    const frames = 5;
    const buf = new Uint8Array(w * h * frames + 3); // trailing bytes are ignored
    for (let i = 0; i < frames; i++) buf.set(frame(w, h, PATTERNS[i % PATTERNS.length]!, i + w), i * w * h);
    const n = native.frameFeatures(buf, w, h, frames, 96);
    const r = reference.frameFeatures(buf, w, h, frames, 96);
    t.equal(n.length, frames * 6);
    for (let k = 0; k < n.length; k++) {
      // index 1 is si (float sqrt on SIMD paths); the rest come from exact integer sums
      if (k % 6 === 1) t.ok(near(n[k]!, r[k]!), `${w}x${h} [${k}] si ${n[k]} vs ${r[k]}`);
      else t.equal(n[k], r[k], `${w}x${h} [${k}]`);
    }
  }
});

t.test('audioFeatures equals the reference', async t => {
  for (const len of [0, 7, 9, 321, 16000, 16003]) {
    for (const fs of [1, 2, 7, 8, 9, 31, 320, 512]) {
      const x = audio(len, len + fs);
      const n = native.audioFeatures(x, fs);
      const r = reference.audioFeatures(x, fs);
      t.equal(n.length, Math.floor(len / fs) * 5, `n=${len} frame=${fs} length`);
      let bad = '';
      for (let f = 0; f * 5 < n.length && !bad; f++) {
        const o = f * 5;
        const energy = r[o]! * r[o]!; // midEnergy is a difference: its error scales with rms^2
        if (n[o + 1] !== r[o + 1]) bad = `frame ${f} zcr ${n[o + 1]} vs ${r[o + 1]}`;
        for (const k of [0, 2, 3, 4]) {
          if (!bad && !near(n[o + k]!, r[o + k]!, REL, k === 3 ? energy : 0)) {
            bad = `frame ${f} [${k}] ${n[o + k]} vs ${r[o + k]}`;
          }
        }
      }
      t.equal(bad, '', `n=${len} frame=${fs}`);
    }
  }
});

t.test('semantics: what the numbers mean', async t => {
  const w = 160;
  const h = 90;
  const img = frame(w, h, 'noise', 7);
  const inverse = img.map(v => 255 - v);
  t.equal(native.sad(img, img), 0, 'identical frames: sad 0');
  t.equal(native.ti(img, img), 0, 'identical frames: ti 0');
  t.ok(native.sad(img, inverse) > 64 * w * h, 'a frame vs its inverse: sad is large');
  const flat = frame(w, h, 'flat', 0);
  t.same(native.sobel(flat, w, h, 0), { si: 0, edgeDensity: 0 }, 'flat frame: no structure');
  const board = native.sobel(frame(w, h, 'blocks', 0), w, h, 96);
  t.ok(board.si > 200, `8px checkerboard: high si (${board.si})`);
  t.ok(board.edgeDensity > 0.2, `8px checkerboard: many edges (${board.edgeDensity})`);
  t.same(native.sobel(img, 2, 2, 0), { si: 0, edgeDensity: 0 }, 'w<3: no interior');
  t.same(native.histogram(flat)[117], w * h, 'histogram of a flat frame is one bin');
  t.same(native.downscale2x(Uint8Array.of(0, 1, 2, 2, 9), 2, 2), Uint8Array.of(1), 'rounds (0+1+2+2+2)>>2');
  const f = native.frameFeatures(Buffer.concat([flat, flat]), w, h, 2, 96);
  t.same(Array.from(f), [0, 0, 0, 0, 117, 0, 0, 0, 0, 0, 117, 0], 'two flat frames');
});

t.test('wrong arguments throw TypeError', async t => {
  const a = new Uint8Array(16);
  const bad: [string, (k: typeof native) => unknown][] = [
    ['sad length mismatch', k => k.sad(a, new Uint8Array(15))],
    ['ti on a plain array', k => k.ti([1, 2] as unknown as Uint8Array, a)],
    ['sobel buffer shorter than w*h', k => k.sobel(a, 5, 4, 10)],
    ['sobel non-integer width', k => k.sobel(a, 2.5, 2, 10)],
    ['downscale2x negative height', k => k.downscale2x(a, 4, -1)],
    ['frameFeatures buffer shorter than w*h*n', k => k.frameFeatures(a, 4, 2, 3, 96)],
    ['frameFeatures threshold not a number', k => k.frameFeatures(a, 4, 2, 2, '96' as unknown as number)],
    ['audioFeatures on bytes', k => k.audioFeatures(a as unknown as Float32Array, 4)],
    ['audioFeatures frameSize 0', k => k.audioFeatures(new Float32Array(8), 0)],
    ['histogram on a Float32Array', k => k.histogram(new Float32Array(4) as unknown as Uint8Array)],
  ];
  for (const [name, call] of bad) {
    t.throws(() => call(native), TypeError, `native: ${name}`);
    t.throws(() => call(reference), TypeError, `reference: ${name}`);
  }
});

// Other ISA paths run in child processes: the addon picks its table once per process.
// Inputs go through files so parent and child see the very same bytes.
const nativeTs = fileURLToPath(new URL('../../daemon/analysis/native.ts', import.meta.url));
const childCode = `
  const { readFileSync } = await import('node:fs');
  const { loadNative } = await import(${JSON.stringify(nativeTs)});
  const [framesFile, pcmFile] = process.argv.slice(1);
  const k = loadNative();
  const frames = new Uint8Array(readFileSync(framesFile));
  const pcm = new Float32Array(new Uint8Array(readFileSync(pcmFile)).buffer);
  console.log(JSON.stringify({ isa: k.isa(),
    frames: Array.from(k.frameFeatures(frames, 161, 91, 5, 96)),
    audio: Array.from(k.audioFeatures(pcm, 320)) }));`;

function runChild(simd: string, args: string[] = []): ReturnType<typeof spawnSync> {
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', childCode, ...args], {
    env: { ...process.env, YACHAY_SIMD: simd }, encoding: 'utf8',
  });
}

// scalar is bit-exact with the TypeScript reference; other forced paths within tolerance.
const forced = ['scalar', ...(process.arch === 'x64' ? ['sse2'] : process.arch === 'arm64' ? ['neon'] : [])];
for (const isa of forced) {
  t.test(`YACHAY_SIMD=${isa} runs the ${isa} path and equals the reference`, async t => {
    const dir = t.testdir({});
    const frames = new Uint8Array(161 * 91 * 5);
    for (let i = 0; i < 5; i++) frames.set(frame(161, 91, PATTERNS[i % PATTERNS.length]!, 40 + i), i * 161 * 91);
    const pcm = audio(16003, 5);
    writeFileSync(join(dir, 'frames.bin'), frames);
    writeFileSync(join(dir, 'pcm.bin'), new Uint8Array(pcm.buffer));
    const child = runChild(isa, [join(dir, 'frames.bin'), join(dir, 'pcm.bin')]);
    t.equal(child.status, 0, String(child.stderr));
    const out = JSON.parse(String(child.stdout)) as { isa: string; frames: number[]; audio: number[] };
    t.equal(out.isa, isa, `isa() reports ${isa}`);
    const rf = reference.frameFeatures(frames, 161, 91, 5, 96);
    const ra = reference.audioFeatures(pcm, 320);
    const exact = isa === 'scalar';
    t.equal(out.frames.length, rf.length);
    t.equal(out.audio.length, ra.length);
    const badFrame = out.frames.findIndex((v, k) => (exact || k % 6 !== 1 ? v !== rf[k] : !near(v, rf[k]!)));
    t.equal(badFrame, -1, `frameFeatures ${exact ? 'bit-exact' : 'within 1e-3'}`);
    const badAudio = out.audio.findIndex((v, k) => {
      const energy = ra[k - (k % 5)]! ** 2;
      return exact || k % 5 === 1 ? v !== ra[k] : !near(v, ra[k]!, REL, k % 5 === 3 ? energy : 0);
    });
    t.equal(badAudio, -1, `audioFeatures ${exact ? 'bit-exact' : 'within 1e-3'}`);
  });
}

t.test('forcing an ISA this machine lacks fails loudly', async t => {
  const child = runChild(process.arch === 'arm64' ? 'avx2' : 'neon');
  t.not(child.status, 0);
  t.match(String(child.stderr), /YCH_ERR_NATIVE_LOAD|not available/);
  t.match(String(child.stderr), /available here: /);
});

t.test('loader error lists every candidate and the fix', async t => {
  const dir = t.testdir({});
  const badFile = join(dir, 'bad.node');
  writeFileSync(badFile, 'not an ELF file');
  const paths = nativeCandidates({ YACHAY_NATIVE_PATH: badFile });
  t.equal(paths[0], badFile, 'YACHAY_NATIVE_PATH is tried first');
  t.match(paths[1] ?? '', /native\/build\/Release\/yachay_native\.node$/);
  t.match(paths[2] ?? '', /native\/build\/Debug\/yachay_native\.node$/);
  const missing = join(dir, 'build', 'Release', 'yachay_native.node');
  try {
    loadNativeFrom([badFile, missing]);
    t.fail('should not load');
  } catch (err) {
    t.ok(isYachayError(err, 'YCH_ERR_NATIVE_LOAD'), 'YachayError YCH_ERR_NATIVE_LOAD');
    const msg = (err as Error).message;
    t.match(msg, `${badFile}: `, 'names the bad file and why');
    t.match(msg, `${missing}: `, 'names the missing build output');
    t.match(msg, 'npm run build:native', 'says how to fix it');
    t.notMatch(msg, /\n\s+at /, 'no stack noise in the message');
  }
  t.throws(() => loadNativeFrom([]), { code: 'YCH_ERR_NATIVE_LOAD', message: /no candidate paths/ });
});
