import t from 'tap';
import { ErrorTally, createLogger, errorTally, prettyLine } from '../../../daemon/log.js';

// issue 11 item 5: logs readable on a terminal, JSON under systemd and in pipes; a summary of
// what went wrong rides the telemetry to the hub.

t.test('JSON lines by default in a pipe, readable lines when asked (a terminal)', async (t) => {
  const json: string[] = [];
  const log = createLogger('info', 'json', { write: (s) => { json.push(s); } });
  log.child({ svc: 'sync' }).warn({ lessonId: 'agua', code: 'YCH_ERR_DISK_FULL' }, 'lesson not synced');
  const rec = JSON.parse(json[0]!) as Record<string, unknown>;
  t.match(rec, { level: 40, svc: 'sync', lessonId: 'agua', code: 'YCH_ERR_DISK_FULL', msg: 'lesson not synced' }, 'one JSON object per line');

  const pretty: string[] = [];
  const plog = createLogger('info', 'pretty', { write: (s) => { pretty.push(s); } });
  plog.child({ svc: 'sync' }).error({ err: Object.assign(new Error('no room left'), { code: 'ENOSPC' }), lessonId: 'agua' }, 'lesson not synced');
  plog.info('ready');
  t.match(pretty[0], /^\d\d:\d\d:\d\d ERROR \[sync\] lesson not synced lessonId=agua — ENOSPC: no room left\n$/, String(pretty[0]));
  t.match(pretty[1], /^\d\d:\d\d:\d\d INFO  ready\n$/);
  t.notMatch(pretty.join(''), /"level"/, 'no JSON on the terminal');
});

t.test('warnings and errors are counted by code, errors first, within a day', async (t) => {
  let now = 1_000_000;
  const tally = new ErrorTally(24 * 3600_000, 3, () => now);
  tally.observe({ level: 40, code: 'YCH_ERR_HUB_UNREACHABLE', msg: 'hub away' });
  tally.observe({ level: 40, code: 'YCH_ERR_HUB_UNREACHABLE', msg: 'hub away' });
  tally.observe({ level: 50, msg: 'ffmpeg failed', err: { code: 'YCH_ERR_FFMPEG_FAILED' } });
  tally.observe({ level: 50, msg: 'no code here' });
  const s = tally.summary();
  t.equal(s.warnings, 2); t.equal(s.errors, 2);
  t.same(s.top.map((e) => [e.code, e.level, e.count]), [['YCH_ERR_FFMPEG_FAILED', 'error', 1], ['no code here', 'error', 1], ['YCH_ERR_HUB_UNREACHABLE', 'warn', 2]]);
  tally.observe({ level: 40, code: 'A' });
  t.equal(tally.summary().top.length, 3, 'at most maxCodes codes are kept (the least recent goes)');
  now += 25 * 3600_000;
  t.same(tally.summary(), { warnings: 0, errors: 0, top: [] }, 'a day later, what has not recurred is gone');
});

t.test('every logger of the process feeds the one tally', async (t) => {
  const before = errorTally.summary(50).top.find((e) => e.code === 'YCH_TEST_TALLY')?.count ?? 0;
  const log = createLogger('info', 'json', { write: () => undefined });
  log.error({ code: 'YCH_TEST_TALLY' }, 'counted');
  log.info({ code: 'YCH_TEST_TALLY' }, 'info is not counted');
  t.equal(errorTally.summary(50).top.find((e) => e.code === 'YCH_TEST_TALLY')?.count, before + 1);
  t.match(prettyLine({ level: 30, msg: 'x', time: 0 }), /INFO {2}x/);
});
