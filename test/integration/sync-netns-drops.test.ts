import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IDLE_MS, WHERE, cut, fetchChild, rig, whenPart } from '../helpers/sync-rig.js';

// Issue 9: "link dropped 5 times mid-blob", through the satellite-like link of sync-rig.ts.

t.test(`a 2 MB blob survives the link dropped 5 times mid-transfer, each byte fetched once (${WHERE})`, async (t) => {
  const size = 2 * 1024 * 1024;
  const r = await rig(t, size);
  const before = await r.link.counters();
  const run = fetchChild(r);
  for (let i = 1; i <= 5; i++) {
    const at = await whenPart(r, Math.floor((size * i) / 7));
    await cut(r, IDLE_MS + 300);
    t.comment(`drop ${i} at ${at} bytes`);
  }
  const end = await run.end;
  const after = await r.link.counters();
  t.ok(end.ok, `fetched: ${JSON.stringify(end)}`);
  t.ok(end.failures >= 5, `${end.failures} attempts died with the link and were resumed`);
  t.equal(end.bodyBytes, size, 'every body byte crossed the link once: each resume asked only for the rest');
  t.same(readFileSync(r.dest), r.blob, 'the blob is whole');
  t.notOk(existsSync(r.part), 'no .part left');
  const ranges = readFileSync(join(r.origin, '..', 'nginx', 'access.log'), 'utf8').split('\n').filter((l) => / 206 /.test(l)).length;
  t.ok(ranges >= 5, `${ranges} Range requests (206) at the origin`);
  if (r.link.mode === 'netns') {
    const sent = after.hubTx - before.hubTx; const got = after.boxRx - before.boxRx;
    // what the hub sends into a dead link is lost by nature, and after each drop what the
    // abandoned connection had in flight still reaches the box (~0.1× the blob per drop at this
    // test's 8 Mbit/s: 1.45–1.55× in all); a resume from zero would make it ≥ 2.1× before any waste
    t.comment(`hub sent ${sent} bytes into the link (${(sent / size).toFixed(3)}× the blob), the box received ${got} (${(got / size).toFixed(3)}×)`);
    const allowed = size * 1.9;
    t.ok(got >= size && got <= allowed, `the box received ${(got / size).toFixed(3)}× the blob over the link (allowed ${(allowed / size).toFixed(2)}×)`);
  }
});

