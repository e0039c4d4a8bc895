import t from 'tap';
import { HubClock, inWindow, localClock, nextWindowAt, parseWindow } from '../../daemon/sync/window.js';
import { TokenBucket } from '../../daemon/pkg/fetch.js';

const LIMA = 'America/Lima';
// Lima is UTC-5 all year: 22:00 Lima is 03:00 UTC the next day
const lima = (d: string, hhmm: string): number => {
  const [h, m] = hhmm.split(':').map(Number);
  return Date.UTC(Number(d.slice(0, 4)), Number(d.slice(5, 7)) - 1, Number(d.slice(8, 10)), h! + 5, m!);
};

t.test('the night window in Lima time, across midnight', async (t) => {
  const w = parseWindow('22:00-05:00');
  t.equal(localClock(lima('2026-12-03', '21:59'), LIMA).minute, 21 * 60 + 59, 'Intl gives Lima time');
  t.notOk(inWindow(w, lima('2026-12-03', '21:59'), LIMA), '21:59 closed');
  t.ok(inWindow(w, lima('2026-12-03', '22:00'), LIMA), '22:00 open');
  t.ok(inWindow(w, lima('2026-12-03', '23:59'), LIMA), '23:59 open');
  t.ok(inWindow(w, lima('2026-12-04', '00:00'), LIMA), 'midnight open');
  t.ok(inWindow(w, lima('2026-12-04', '04:59'), LIMA), '04:59 open');
  t.notOk(inWindow(w, lima('2026-12-04', '05:00'), LIMA), '05:00 closed');
  t.notOk(inWindow(w, lima('2026-12-04', '12:00'), LIMA), 'noon closed');
  // 21:00 in Lima is 02:00 UTC: a box that read the window in UTC would sync in the school's evening
  t.ok(inWindow(w, lima('2026-12-03', '21:00'), 'UTC') && !inWindow(w, lima('2026-12-03', '21:00'), LIMA), 'the school\'s zone, not UTC');
  t.equal(nextWindowAt(w, lima('2026-12-03', '12:34'), LIMA), lima('2026-12-03', '22:00'), 'at noon: tonight 22:00');
  t.equal(nextWindowAt(w, lima('2026-12-04', '05:00'), LIMA), lima('2026-12-04', '22:00'), 'just closed: tonight');
  const inside = lima('2026-12-04', '01:00');
  t.equal(nextWindowAt(w, inside, LIMA), inside, 'open: now');
  const day = parseWindow('09:30-11:00');
  t.ok(inWindow(day, lima('2026-12-03', '10:00'), LIMA));
  t.notOk(inWindow(day, lima('2026-12-03', '11:00'), LIMA));
  t.equal(nextWindowAt(day, lima('2026-12-03', '11:00'), LIMA), lima('2026-12-04', '09:30'), 'a day window: tomorrow');
  t.ok(inWindow(parseWindow('always'), 0, LIMA));
  for (const bad of ['25:00-01:00', '22:00', '22:00-22:00', 'night']) t.throws(() => parseWindow(bad), { code: 'YCH_ERR_CONFIG' }, bad);
});

t.test('a box clock at 1970 follows the hub\'s Date header', async (t) => {
  let local = Date.UTC(1970, 0, 1, 0, 5);
  const clock = new HubClock(() => local);
  t.notOk(clock.localPlausible(), '1970 is implausible');
  t.equal(clock.now(), undefined, 'no time until the hub answers');
  const hubNow = lima('2026-12-03', '23:00');
  clock.observe(hubNow);
  t.equal(clock.now(), hubNow, 'the hub\'s time');
  local += 60_000;
  t.equal(clock.now(), hubNow + 60_000, 'and it runs on with the local clock');
  const w = parseWindow('22:00-05:00');
  t.ok(inWindow(w, clock.now()!, LIMA), 'so the window opens at the hub\'s night, not 1970\'s');
  // a plausible clock that is hours off the hub is also overruled
  let skewed = lima('2026-12-03', '12:00');
  const c2 = new HubClock(() => skewed);
  t.ok(c2.localPlausible());
  c2.observe(lima('2026-12-03', '23:00'));
  t.notOk(c2.localPlausible(), '11 h off the hub');
  t.equal(c2.now(), lima('2026-12-03', '23:00'));
  skewed = Date.now();
  const c3 = new HubClock(() => skewed);
  c3.observe(skewed + 2000);
  t.ok(c3.localPlausible(), 'a few seconds off: the box keeps its own clock');
  t.equal(c3.now(), skewed);
  c3.observe(Date.UTC(1999, 0, 1));
  t.equal(c3.now(), skewed, 'an implausible Date header is ignored');
});

t.test('the token bucket holds the rate', async (t) => {
  const b = new TokenBucket(800); // 100,000 B/s, burst 25,000 B
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) await b.take(10_000);
  const s = (performance.now() - t0) / 1000;
  const expect = (200_000 - b.burst) / b.bytesPerS;
  t.ok(s >= expect * 0.95 && s <= expect * 1.3, `200 kB at 800 kb/s took ${s.toFixed(2)} s (expected ${expect.toFixed(2)} s)`);
});
