import t from 'tap';
import { audioStats, classify, detectCuts, findShots, mergeMoving, speechIntervals, videoStats } from '../../../daemon/optimize/shots.js';
import type { AudioFeatures, VideoFeatures } from '../../../daemon/optimize/analyse.js';

/** Feature series shaped like the analyser's output at 5 fps. */
function video(parts: Array<{ sec: number; diff: number; ti: number; edges?: number; jump?: number }>): VideoFeatures {
  const fps = 5;
  const rows: Array<[number, number, number]> = [];
  for (const p of parts) {
    const n = p.sec * fps;
    for (let i = 0; i < n; i++) {
      const first = i === 0 && rows.length > 0;
      rows.push([first ? (p.jump ?? 40) : p.diff, p.ti, p.edges ?? 0.1]);
    }
  }
  const col = (k: number): Float32Array => Float32Array.from(rows.map((r) => r[k]!));
  return { fps, diff: col(0), si: col(0), ti: col(1), edges: col(2), luma: col(0), lumaStd: col(0) };
}

t.test('cuts at slide changes, none inside continuous motion', async (t) => {
  const v = video([
    { sec: 10, diff: 0, ti: 0 },
    { sec: 8, diff: 0, ti: 0 },
    { sec: 6, diff: 25, ti: 30 }, // fractal zoom: big diffs everywhere
    { sec: 5, diff: 0, ti: 0 },
  ]);
  t.same(detectCuts(v), [0, 50, 90, 120]);
});

t.test('a cut from motion to a still slide is found even though motion is busy', async (t) => {
  const v = video([{ sec: 6, diff: 20, ti: 30 }, { sec: 6, diff: 0, ti: 0, jump: 30 }]);
  t.same(detectCuts(v), [0, 30]);
});

t.test('between still pages a small jump is a page turn; in sensor noise it is not', async (t) => {
  // screen recording (corpus): one page of 14 px text for another, mean change 9.3 at 160x90
  const pages = video([{ sec: 8, diff: 0.07, ti: 3 }, { sec: 8, diff: 0.07, ti: 3, jump: 9.3 }]);
  t.same(detectCuts(pages), [0, 40]);
  const noisy = video([{ sec: 8, diff: 1.4, ti: 1.8 }, { sec: 8, diff: 1.4, ti: 1.8, jump: 5 }]);
  t.same(detectCuts(noisy), [0], 'a noisy camera: a jump of 5 is not a cut');
  const small = video([{ sec: 8, diff: 0.07, ti: 3 }, { sec: 8, diff: 0.07, ti: 3, jump: 3 }]);
  t.same(detectCuts(small), [0], 'a pointer or a small edit is not a cut');
});

t.test('classes follow motion and noise levels seen on generated lectures', async (t) => {
  const base = { diffP90: 0, si: 100, edges: 0.2, edgeGrowth: 0 };
  t.equal(classify({ ...base, diff: 0, ti: 0 }), 'slide');
  t.equal(classify({ ...base, diff: 0.15, ti: 0.4, edgeGrowth: 0.09 }), 'board');
  t.equal(classify({ ...base, diff: 1.77, ti: 6.1 }), 'talking_head');
  t.equal(classify({ ...base, diff: 0.53, ti: 1.59 }), 'talking_head', 'a slow head: few pixels, changed a lot');
  t.equal(classify({ ...base, diff: 1.0, ti: 1.25 }), 'slide', 'a still camera: every pixel, changed a little');
  t.equal(classify({ ...base, diff: 13, ti: 29 }), 'motion');
});

function audio(parts: Array<{ sec: number; kind: 'speech' | 'music' | 'silence' }>): AudioFeatures {
  const frameSec = 0.02;
  const rms: number[] = [];
  for (const p of parts) {
    for (let i = 0; i < p.sec / frameSec; i++) {
      // speech: 200 ms syllables with 100 ms gaps; music: steady
      rms.push(p.kind === 'silence' ? 0.0005 : p.kind === 'music' ? 0.1 : (i % 15) < 10 ? 0.12 : 0.01);
    }
  }
  const f = Float32Array.from(rms);
  return { frameSec, rms: f, zcr: f, low: f, high: f };
}

t.test('speech, music and silence by the shape of the energy envelope', async (t) => {
  const a = audio([{ sec: 5, kind: 'speech' }, { sec: 5, kind: 'music' }, { sec: 5, kind: 'silence' }]);
  t.equal(audioStats(a, 0, 5).kind, 'speech');
  t.equal(audioStats(a, 5, 10).kind, 'music');
  t.equal(audioStats(a, 10, 15).kind, 'silence');
  t.same(speechIntervals(a), [{ start: 0, end: 5 }]);
});

t.test('no video: one shot covering the whole recording', async (t) => {
  const shots = findShots({ audio: audio([{ sec: 4, kind: 'speech' }]) }, 4);
  t.equal(shots.length, 1);
  t.equal(shots[0]!.end, 4);
  t.equal(shots[0]!.audio.kind, 'speech');
});

// Rules from real footage (test/corpus): the figures are the shot statistics measured on it.
t.test('real footage: a film shot is motion, a pointer over a page is a still', async (t) => {
  const base = { diffP90: 0, si: 100, edges: 0.2, edgeGrowth: 0 };
  t.equal(classify({ ...base, diff: 5.25, ti: 13.97 }), 'motion', 'Megamind close-up, camera and characters moving');
  t.equal(classify({ ...base, diff: 0.07, ti: 3.1 }), 'slide', 'manual page with a wandering mouse pointer');
  t.equal(classify({ ...base, diff: 0.19, ti: 1.47 }), 'talking_head', 'the generated presenter: small, but not pointer-small');
  t.equal(classify({ ...base, diff: 2.28, ti: 14.65 }), 'motion', 'pedestrians past a fixed camera');
});

t.test('real footage: brightness flicker on a filmed projection is not motion', async (t) => {
  // every frame brighter or darker by 1.6 levels (auto-exposure hunting) plus a little noise
  const n = 50;
  const luma = Float32Array.from({ length: n }, (_, i) => 120 + (i % 2) * 1.6);
  const diff = Float32Array.from({ length: n }, (_, i) => (i === 0 ? 0 : 1.7));
  const ti = new Float32Array(n).fill(1.1);
  const flat = new Float32Array(n).fill(0.2);
  const flicker: VideoFeatures = { fps: 5, diff, ti, si: flat, edges: flat, luma, lumaStd: flat };
  t.equal(classify(videoStats(flicker, 0, n)), 'slide');
  // the same change with the mean brightness held: something moves in the picture
  const steady: VideoFeatures = { ...flicker, luma: new Float32Array(n).fill(120) };
  t.equal(classify(videoStats(steady, 0, n)), 'talking_head');
});

t.test('a strong cut between two moving shots is kept, a zoom\'s jump is not', async (t) => {
  // film: scenes with median diff 6 and scene cuts 7x that
  const film = video([{ sec: 6, diff: 6, ti: 18 }, { sec: 6, diff: 6, ti: 18, jump: 45 }, { sec: 6, diff: 7, ti: 20, jump: 50 }]);
  t.same(detectCuts(film), [0, 30, 60]);
  t.same(mergeMoving(film, detectCuts(film)), [0, 30, 60]);
  t.same(findShots({ video: film }, 18).map((s) => s.cls), ['motion', 'motion', 'motion']);
  // fractal zoom: median 13, one jump 3.5x the median: a cut to detectCuts, not a strong one
  const zoom = video([{ sec: 6, diff: 13, ti: 29 }, { sec: 6, diff: 13, ti: 29, jump: 45 }]);
  t.same(detectCuts(zoom), [0, 30]);
  t.same(mergeMoving(zoom, detectCuts(zoom)), [0]);
});
