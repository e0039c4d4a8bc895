import t from 'tap';
import { silenceGate, speechSegments } from '../../../daemon/models/vad.js';

// Speech segments and the silence gate from made-up probabilities: the rules, not the model.

const F = 0.032;
function probs(spec: Array<[number, number]>): Float32Array {
  // [seconds, probability] runs
  const out: number[] = [];
  for (const [sec, p] of spec) for (let i = 0; i < Math.round(sec / F); i++) out.push(p);
  return Float32Array.from(out);
}

t.test('hysteresis, short pauses joined, clicks dropped, padding', async (t) => {
  const p = probs([[1, 0.02], [2, 0.9], [0.2, 0.1], [1, 0.9], [1, 0.02], [0.064, 0.95], [1, 0.02], [1, 0.4], [1, 0.02]]);
  const d = p.length * F;
  const s = speechSegments(p, F, d, { padSec: 0 });
  t.equal(s.length, 1, 'a 0.2 s breath does not split; a 64 ms click is not speech; 0.4 never starts speech');
  t.ok(Math.abs(s[0]!.start - 1) < 0.05 && Math.abs(s[0]!.end - 4.2) < 0.05, `${s[0]!.start.toFixed(2)}–${s[0]!.end.toFixed(2)}`);
  // between on and off: speech continues (hysteresis)
  const h = speechSegments(probs([[1, 0.9], [1, 0.4], [1, 0.1]]), F, 3, { padSec: 0 });
  t.ok(Math.abs(h[0]!.end - 2) < 0.05, 'stays on above the off threshold');
  const padded = speechSegments(probs([[1, 0], [1, 0.9], [1, 0]]), F, 3);
  t.ok(Math.abs(padded[0]!.start - 0.85) < 0.05 && Math.abs(padded[0]!.end - 2.15) < 0.05, 'padded 0.15 s each side');
  t.same(speechSegments(probs([[0.5, 0.9]]), F, 0.5, { padSec: 1 }), [{ start: 0, end: 0.5 }], 'padding clamped to the lesson');
});

t.test('the gate cuts quiet pauses only, never loud sound outside speech', async (t) => {
  const rms = new Float32Array(500).fill(0.001); // 10 s of 20 ms frames
  for (let i = 300; i < 400; i++) rms[i] = 0.05; // music from 6 s to 8 s
  const speech = [{ start: 2, end: 4 }];
  const gate = silenceGate(speech, rms, 0.02, 10);
  t.same(gate, [{ start: 0, end: 2 }, { start: 4, end: 6 }, { start: 8, end: 10 }]);
  t.same(silenceGate([{ start: 0, end: 9.7 }], rms.fill(0.001), 0.02, 10), [], 'a 0.3 s gap is not worth a cut');
});
