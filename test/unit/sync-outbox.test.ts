import t from 'tap';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDb } from '../../daemon/db/db.js';
import { Outbox } from '../../daemon/sync/outbox.js';
import { upKind, downKind } from '../../daemon/sync/topics.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const S = 'escuela-1';

t.test('up-messages come out in the order they went in, and survive closing the database', async (t) => {
  const file = join(t.testdir(), 'yachay.db');
  let db = openDb(file);
  const box = new Outbox(db, S);
  box.add(`yachay/${S}/telemetry`, '{"n":1}');
  box.add(`yachay/${S}/sync/ack/agua`, '{"version":1}');
  box.add(`yachay/${S}/request/suelo`, '{"by":"tito"}');
  db.close();
  db = openDb(file);
  t.teardown(() => db.close());
  const again = new Outbox(db, S);
  const rows = again.peek();
  t.same(rows.map((r) => r.topic), [`yachay/${S}/telemetry`, `yachay/${S}/sync/ack/agua`, `yachay/${S}/request/suelo`], 'same order after reopen');
  t.same(rows.map((r) => r.kind), ['telemetry', 'keep', 'keep']);
  again.remove(rows[0]!.id);
  t.equal(again.size().rows, 2, 'removed only when acknowledged');
});

t.test('the outbox refuses down-topics and other schools\' topics: nothing from the hub goes back up', async (t) => {
  const db = openDb(join(t.testdir(), 'yachay.db'));
  t.teardown(() => db.close());
  const box = new Outbox(db, S);
  for (const topic of [`yachay/${S}/assign/agua`, `yachay/${S}/cmd/sync-now`, 'yachay/catalog/primaria/agua', 'yachay/otra-escuela/telemetry']) {
    t.throws(() => box.add(topic, 'x'), { code: 'YCH_ERR_USAGE' }, topic);
  }
  t.equal(box.size().rows, 0);
  t.equal(downKind(`yachay/${S}/assign/agua`, S)?.kind, 'assign');
  t.equal(downKind('yachay/catalog/primaria/agua', S)?.kind, 'catalog');
  t.equal(downKind(`yachay/${S}/telemetry`, S), undefined);
  t.equal(upKind(`yachay/${S}/sync/report`, S), 'keep');
  t.equal(upKind(`yachay/${S}/usage`, S), 'other');
});

t.test('bounded: when full, the oldest telemetry goes first, then usage; acks, reports and requests never', async (t) => {
  const db = openDb(join(t.testdir(), 'yachay.db'));
  t.teardown(() => db.close());
  const box = new Outbox(db, S, { maxRows: 100, maxBytes: 1 << 30 });
  for (let i = 0; i < 60; i++) box.add(`yachay/${S}/telemetry`, JSON.stringify({ i }));
  for (let i = 0; i < 20; i++) box.add(`yachay/${S}/usage`, JSON.stringify({ i }));
  for (let i = 0; i < 30; i++) box.add(`yachay/${S}/sync/ack/l${i}`, JSON.stringify({ i }));
  let rows = box.peek(1000);
  t.equal(rows.length, 100, 'never more than the bound');
  t.equal(rows.filter((r) => r.kind === 'keep').length, 30, 'every ack kept');
  t.equal(rows.filter((r) => r.kind === 'other').length, 20, 'usage kept while telemetry remains');
  const tele = rows.filter((r) => r.kind === 'telemetry').map((r) => (JSON.parse(r.payload.toString()) as { i: number }).i);
  t.same(tele, Array.from({ length: 50 }, (_, k) => k + 10), 'the 10 oldest telemetry samples went');
  // more acks than the bound can hold without telemetry: usage goes next, acks still all stay
  for (let i = 30; i < 130; i++) box.add(`yachay/${S}/sync/ack/l${i}`, JSON.stringify({ i }));
  rows = box.peek(1000);
  t.equal(rows.filter((r) => r.kind === 'telemetry').length, 0);
  t.equal(rows.filter((r) => r.kind === 'other').length, 0);
  t.equal(rows.filter((r) => r.kind === 'keep').length, 130, 'acks are never evicted, even over the bound');
  t.equal(box.evicted, 80);
});

t.test('bounded by bytes too', async (t) => {
  const db = openDb(join(t.testdir(), 'yachay.db'));
  t.teardown(() => db.close());
  const box = new Outbox(db, S, { maxRows: 1_000_000, maxBytes: 100_000 });
  const big = 'x'.repeat(1000);
  for (let i = 0; i < 300; i++) box.add(`yachay/${S}/telemetry`, big);
  t.ok(box.size().bytes <= 100_000, `${box.size().bytes} bytes kept`);
  t.ok(box.size().rows >= 90, `${box.size().rows} newest samples kept`);
});

t.test('a process killed with SIGKILL while adding keeps every committed message', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'yachay.db');
  const script = join(dir, 'writer.mts');
  writeFileSync(script, `
import { openDb } from ${JSON.stringify(join(ROOT, 'daemon/db/db.ts'))};
import { Outbox } from ${JSON.stringify(join(ROOT, 'daemon/sync/outbox.ts'))};
const db = openDb(${JSON.stringify(file)});
const box = new Outbox(db, ${JSON.stringify(S)});
for (let i = 0; ; i++) {
  box.add('yachay/${S}/sync/ack/l' + i, JSON.stringify({ i }));
  process.stdout.write(i + '\\n');
  if (i % 50 === 0) await new Promise((r) => setImmediate(r));
}
`);
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let last = -1; let err = '';
  child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      const lines = b.toString().trim().split('\n');
      last = Number(lines[lines.length - 1]);
      if (last >= 500 && !child.killed) { child.kill('SIGKILL'); resolve(); }
    });
    child.on('exit', () => (last >= 500 ? resolve() : reject(new Error(`writer died early: ${err}`))));
  });
  await new Promise((r) => child.once('exit', r).exitCode !== null ? r(undefined) : undefined);
  const db = openDb(file);
  t.teardown(() => db.close());
  const rows = new Outbox(db, S).peek(1_000_000);
  t.ok(rows.length >= last + 1, `${rows.length} rows after kill -9; the writer had reported ${last + 1}`);
  const ids = rows.map((r) => (JSON.parse(r.payload.toString()) as { i: number }).i);
  t.same(ids, Array.from({ length: rows.length }, (_, k) => k), 'in order, no gap');
});
