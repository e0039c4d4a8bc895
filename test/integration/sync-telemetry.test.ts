import t from 'tap';
import { join } from 'node:path';
import { pino } from 'pino';
import { errorTally } from '../../daemon/log.js';
import { sampleTelemetry } from '../../daemon/sync/telemetry.js';
import { topics } from '../../daemon/sync/topics.js';
import { startFakeHub, until } from '../helpers/sync-hub.js';
import { S, startBox } from '../helpers/sync-box.js';

// issue 11 item 5: a box's error summary goes upstream with its telemetry, through the outbox
// and the bridge to the hub's real Mosquitto.
t.test('the telemetry carries the box\'s recent warnings and errors by code to the hub', async (t) => {
  const dir = t.testdir();
  const hub = await startFakeHub(join(dir, 'hub'));
  t.teardown(() => hub.close());
  hub.codes.set('OK-1', { status: 200 });
  const edge = await startBox(t, join(dir, 'box'), hub, { code: 'OK-1' });
  await until(() => edge.sync.engine && edge.sync.bridge?.connected, 10_000, 'bridge up');
  errorTally.observe({ level: 50, code: 'YCH_ERR_FFMPEG_FAILED', msg: 'encode failed' });
  errorTally.observe({ level: 50, code: 'YCH_ERR_FFMPEG_FAILED', msg: 'encode failed' });
  errorTally.observe({ level: 40, code: 'YCH_ERR_HUB_UNREACHABLE', msg: 'hub away' });
  const sample = await sampleTelemetry({
    school: S, version: 'test', dataDir: join(dir, 'box'), outbox: edge.sync.outbox!, engine: edge.sync.engine!,
    lessonCount: () => edge.lessons.list({}).length, log: pino({ level: 'silent' }),
  });
  edge.sync.outbox!.add(topics.telemetry(S), JSON.stringify(sample));
  const got = await until(() => hub.seen.find((m) => m.topic === `yachay/${S}/telemetry`), 10_000, 'telemetry at the hub');
  const errors = (JSON.parse(got.payload) as { errors: { errors: number; warnings: number; syncFailed: number; top: Array<{ code: string; count: number; level: string }> } }).errors;
  t.ok(errors.errors >= 2 && errors.warnings >= 1, `totals: ${errors.errors} errors, ${errors.warnings} warnings`);
  t.match(errors.top.find((e) => e.code === 'YCH_ERR_FFMPEG_FAILED'), { level: 'error', count: 2 }, 'the codes, counted');
  t.equal(errors.syncFailed, 0, 'and the last sync\'s failures');
});
