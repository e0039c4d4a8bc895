import t from 'tap';
import { MIN_GAIN, missKey, worthRetrying } from '../../../daemon/optimize/attempts.js';
import type { Miss } from '../../../daemon/optimize/verify.js';

const miss = (shot: number | undefined, kind: Miss['kind'], value: number, floor: number): Miss => ({ shot, kind, value, floor, start: 0, end: 1 });

t.test('a first miss is always retried: nothing to predict from yet', async (t) => {
  const m = [miss(3, 'text', 0.325, 0.361), miss(undefined, 'speech', 0.95, 0.96)];
  const h = new Map(m.map((x) => [missKey(x), [x.value]]));
  const r = worthRetrying(m, h, 2);
  t.same(r.retry, m);
  t.same(r.giveUp, []);
});

// the 10-minute bench lecture (attempts 1 and 2 as measured): a picture shot 0.926 → 0.946
// against 0.950 is one attempt from its floor; a slide page 0.873 → 0.909 against 0.954 is not
t.test('a shot the last gain cannot bring to its floor in the attempts left is given up, with why', async (t) => {
  const pic = miss(9, 'picture', 0.946, 0.95); const text = miss(27, 'text', 0.909, 0.954);
  const h = new Map([[missKey(pic), [0.926, 0.946]], [missKey(text), [0.873, 0.909]]]);
  const one = worthRetrying([pic, text], h, 1);
  t.same(one.retry, [pic], 'the picture shot gets the last attempt');
  t.equal(one.giveUp.length, 1);
  t.match(one.giveUp[0], { shot: 27, kind: 'text', value: 0.909, floor: 0.954, reason: /gap 0\.0450 .* 1 attempt\(s\) at the last gain 0\.0360/ });
  const two = worthRetrying([pic, text], h, 2);
  t.same(two.retry, [pic, text], 'with two attempts left, 2 × 0.036 can close 0.045: both are retried');
});

t.test('a shot whose last attempt gained (almost) nothing is given up whatever the attempts left', async (t) => {
  const m = miss(4, 'picture', 0.9271, 0.94);
  const worse = miss(5, 'picture', 0.90, 0.94);
  const h = new Map([[missKey(m), [0.906, 0.918, 0.9271 - MIN_GAIN.picture / 2 + 0.0001, 0.9271]], [missKey(worse), [0.91, 0.90]]]);
  const r = worthRetrying([m, worse], h, 10);
  t.same(r.retry, []);
  t.match(r.giveUp, [{ shot: 4, reason: /gained 0\.00\d+ \(< 0\.002\)/ }, { shot: 5, reason: /gained -0\.0100/ }]);
});

t.test('speech is keyed apart from shots', async (t) => {
  t.equal(missKey(miss(undefined, 'speech', 0.9, 0.96)), 'speech');
  t.not(missKey(miss(1, 'text', 0, 0)), missKey(miss(1, 'picture', 0, 0)));
});
