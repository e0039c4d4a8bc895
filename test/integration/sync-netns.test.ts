import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exited, openSatLink, sleep } from '../helpers/netns.js';
import { WHERE, avail, fetchChild, inFlightAllowance, partSize, rig, whenPart } from '../helpers/sync-rig.js';
import { originPath } from '../../daemon/pkg/origin.js';

// Issue 9's faults through a real link (test/helpers/sync-rig.ts): the harness itself, a fetcher
// killed mid-blob, a tampered blob. The five drops are in sync-netns-drops.test.ts.

t.test(`the harness (${WHERE}): the link has the satellite's round trip, drops on demand, and leaves no namespace behind`, async (t) => {
  if (!avail.ok) { t.pass(`skipped: no namespaces here (${avail.why})`); return; }
  const link = await openSatLink({ rttMs: 600, lossPct: 0, rateKbit: 512 });
  const names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const mine = /ych-hub-([0-9a-f]{6})/.exec(link.describe)?.[1];
  t.ok(mine && names.includes(`ych-hub-${mine}`) && names.includes(`ych-box-${mine}`), `both namespaces exist: ${link.describe}`);
  // a TCP handshake costs one round trip: bash's /dev/tcp from the box to a listener at the hub
  const srv = link.spawnIn('hub', process.execPath, ['-e', `require('net').createServer((s)=>s.end()).listen(7000,'${link.hubIp}')`]);
  await sleep(800);
  const rtt = (): number => {
    const t0 = process.hrtime.bigint();
    execFileSync('ip', [...link.prefix('box').slice(1), 'bash', '-c', `exec 3<>/dev/tcp/${link.hubIp}/7000`], { stdio: 'ignore' });
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const ms = rtt();
  t.ok(ms >= 580 && ms < 1500, `connect took ${ms.toFixed(0)} ms (one 600 ms round trip)`);
  await link.down();
  t.throws(() => execFileSync('ip', [...link.prefix('box').slice(1), 'timeout', '2', 'bash', '-c', `exec 3<>/dev/tcp/${link.hubIp}/7000`], { stdio: 'ignore' }), 'nothing crosses a dropped link');
  await link.up();
  t.ok(rtt() < 1500, 'the link carries again once up');
  const c = await link.counters();
  t.ok(c.hubTx > 0 && c.boxTx > 0, `the interfaces count bytes (${JSON.stringify(c)})`);
  srv.kill('SIGKILL');
  await link.close();
  const after = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  t.notOk(after.includes(`ych-hub-${mine}`) || after.includes(`ych-box-${mine}`), 'close() removed both namespaces');
});

t.test('the harness falls back to loopback and says so', async (t) => {
  const link = await openSatLink({}, { forceLoopback: true });
  t.teardown(() => link.close());
  t.equal(link.mode, 'loopback');
  t.match(link.describe, /loopback, unshaped/);
  t.same(link.prefix('box'), []);
});

t.test(`kill -9 of the fetcher mid-blob, then a restart resumes from .part (${WHERE})`, async (t) => {
  const size = 2 * 1024 * 1024;
  const r = await rig(t, size);
  const before = await r.link.counters();
  const first = fetchChild(r);
  first.end.catch(() => {}); // killed: it has no last word
  await whenPart(r, Math.floor(size * 0.4));
  first.child.kill('SIGKILL');
  t.equal(await exited(first.child), 'SIGKILL', 'the fetcher died without a word');
  await sleep(200);
  const kept = partSize(r);
  t.ok(kept >= size * 0.4 && kept < size, `${kept} bytes kept in .part`);
  const second = fetchChild(r);
  const end = await second.end;
  const after = await r.link.counters();
  t.ok(end.ok, `fetched: ${JSON.stringify(end)}`);
  t.equal(end.resumed, 1, 'the restart resumed the blob');
  t.equal(end.bodyBytes, size - kept, 'the restart fetched only what .part lacked');
  t.same(readFileSync(r.dest), r.blob, 'the blob is whole');
  if (r.link.mode === 'netns') {
    const wire = after.hubTx - before.hubTx;
    const allowed = size * 1.06 + inFlightAllowance(r.link, 1);
    t.ok(wire <= allowed, `${wire} bytes on the link in all for ${size} (${(wire / size).toFixed(3)}×; allowed: the blob, headers and one window in flight at the kill, ${Math.round(allowed)})`);
  }
});

t.test(`a tampered blob is rejected, named and fetched again once the origin is mended (${WHERE})`, async (t) => {
  const size = 256 * 1024;
  const r = await rig(t, size);
  const file = join(r.origin, originPath.blob(r.sha));
  const bad = Buffer.from(r.blob); bad[size >> 1] = bad[size >> 1]! ^ 0xff;
  writeFileSync(file, bad);
  const first = await fetchChild(r).end;
  t.notOk(first.ok, 'refused');
  t.equal(first.code, 'YCH_ERR_PACKAGE_HASH');
  t.match(first.message, r.sha, 'the message names the blob');
  t.notOk(existsSync(r.dest) || existsSync(r.part), 'nothing of it is kept');
  writeFileSync(file, r.blob);
  const second = await fetchChild(r).end;
  t.ok(second.ok, 'the mended blob is fetched');
  t.same(readFileSync(r.dest), r.blob);
});
