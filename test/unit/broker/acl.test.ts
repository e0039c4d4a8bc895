import t from 'tap';
import { canPublish, canSubscribe, covers, matches } from '../../../daemon/broker/acl.js';
import type { Principal } from '../../../daemon/broker/acl.js';

const S = 's1';
const admin: Principal = { kind: 'user', username: 'ana', role: 'admin' };
const teacher: Principal = { kind: 'user', username: 'tito', role: 'teacher' };
const device: Principal = { kind: 'user', username: 'hub-link', role: 'device' };
const student: Principal = { kind: 'student', token: 'tok' };

const topics = [
  'yachay/s1/catalog/lesson-1', 'yachay/s1/sync/status', 'yachay/s1/telemetry', 'yachay/s1/cmd/reboot',
  'yachay/s1/class/room1', 'yachay/s1/health', 'yachay/s1/jobs/42', 'yachay/s1/other',
  'yachay/s2/class/room1', 'yachay/s2/cmd/reboot', '$SYS/broker/clients', 'elsewhere',
];

t.test('students cannot publish anywhere', async (t) => {
  for (const topic of topics) t.notOk(canPublish(student, topic, S), topic);
});

t.test('students subscribe only to class, health and the catalog of their school', async (t) => {
  for (const f of ['yachay/s1/class/+', 'yachay/s1/class/room1', 'yachay/s1/health',
    'yachay/s1/catalog/#', 'yachay/s1/catalog/+', 'yachay/s1/catalog/lesson-1']) {
    t.ok(canSubscribe(student, f, S), f);
  }
  for (const f of ['#', '+/#', 'yachay/#', 'yachay/+/#', 'yachay/s1/#', 'yachay/s1/+', 'yachay/s1/+/+',
    'yachay/s1/cmd/+', 'yachay/s1/cmd/#', 'yachay/s1/cmd/reboot', 'yachay/s1/+/reboot', 'yachay/+/cmd/+',
    'yachay/s1/class/#', 'yachay/s1/class', 'yachay/s1/jobs/#', 'yachay/s1/telemetry',
    'yachay/s2/class/+', 'yachay/+/class/+', '$SYS/#', '$share/g/yachay/s1/class/+']) {
    t.notOk(canSubscribe(student, f, S), f);
  }
});

t.test('teachers push lessons to a class but never send commands', async (t) => {
  t.ok(canPublish(teacher, 'yachay/s1/class/room1', S));
  t.notOk(canPublish(teacher, 'yachay/s1/class/room1/extra', S));
  t.notOk(canPublish(teacher, 'yachay/s1/cmd/reboot', S));
  t.notOk(canPublish(teacher, 'yachay/s1/catalog/x', S));
  t.notOk(canPublish(teacher, 'yachay/s1/health', S));
  t.notOk(canPublish(teacher, 'yachay/s2/class/room1', S));
  t.ok(canSubscribe(teacher, 'yachay/s1/jobs/#', S));
  t.ok(canSubscribe(teacher, 'yachay/s1/class/+', S));
  t.notOk(canSubscribe(teacher, 'yachay/s1/cmd/#', S));
  t.notOk(canSubscribe(teacher, 'yachay/s1/#', S));
});

t.test('devices send telemetry and sync status, and receive commands', async (t) => {
  t.ok(canPublish(device, 'yachay/s1/telemetry', S));
  t.ok(canPublish(device, 'yachay/s1/sync/status', S));
  t.ok(canPublish(device, 'yachay/s1/catalog/lesson-1', S));
  t.ok(canPublish(device, 'yachay/s1/cmd/reboot', S));
  t.ok(canSubscribe(device, 'yachay/s1/cmd/+', S));
  t.ok(canSubscribe(device, 'yachay/s1/cmd/#', S));
  t.notOk(canPublish(device, 'yachay/s1/class/room1', S));
  t.notOk(canPublish(device, 'yachay/s1/health', S));
  t.notOk(canSubscribe(device, 'yachay/s1/jobs/#', S));
  t.notOk(canSubscribe(device, 'yachay/s2/cmd/+', S));
});

t.test('admins may do everything in their school, nothing in another', async (t) => {
  for (const topic of topics.filter((x) => x.startsWith('yachay/s1/') && !/health|jobs/.test(x))) {
    t.ok(canPublish(admin, topic, S), topic);
  }
  t.ok(canSubscribe(admin, 'yachay/s1/#', S));
  t.ok(canSubscribe(admin, 'yachay/s1/+/+', S));
  t.ok(canSubscribe(admin, '$SYS/#', S));
  t.notOk(canSubscribe(admin, '#', S), 'would reach other schools');
  t.notOk(canSubscribe(admin, 'yachay/+/cmd/+', S));
  t.notOk(canPublish(admin, 'yachay/s2/cmd/reboot', S));
  t.notOk(canPublish(admin, 'elsewhere', S));
});

t.test('health and job progress belong to the box; $SYS to the server', async (t) => {
  for (const p of [admin, teacher, device, student]) {
    t.notOk(canPublish(p, 'yachay/s1/health', S));
    t.notOk(canPublish(p, 'yachay/s1/jobs/42', S));
    t.notOk(canPublish(p, 'yachay/s1/jobs', S));
    t.notOk(canPublish(p, '$SYS/broker/x', S));
    t.ok(canSubscribe(p, 'yachay/s1/health', S));
  }
  for (const p of [teacher, device, student]) t.notOk(canSubscribe(p, '$SYS/#', S));
});

t.test('malformed topics, filters and school ids are refused', async (t) => {
  t.notOk(canPublish(admin, '', S));
  t.notOk(canPublish(admin, 'yachay/s1/class/+', S));
  t.notOk(canPublish(admin, 'yachay/s1/#', S));
  t.notOk(canPublish(admin, 'yachay/s1/a\u0000b', S));
  t.notOk(canSubscribe(admin, 'yachay/s1/#/x', S));
  t.notOk(canSubscribe(admin, 'yachay/s1/cl+', S));
  t.notOk(canSubscribe(admin, '', S));
  t.notOk(canPublish(admin, 'yachay/+/class/r', '+'));
  t.notOk(canSubscribe(admin, 'yachay/#', '#'));
});

t.test('matches and covers follow MQTT 4.7', async (t) => {
  t.ok(matches('a/#', 'a'));
  t.ok(matches('a/+', 'a/'));
  t.notOk(matches('#', '$SYS/x'));
  t.notOk(matches('+/x', '$SYS/x'));
  t.ok(matches('$SYS/#', '$SYS/x'));
  t.notOk(matches('a/+', 'a/b/c'));
  t.ok(covers('a/#', 'a/+/c'));
  t.ok(covers('a/+', 'a/b'));
  t.ok(covers('a/+', 'a/+'));
  t.notOk(covers('a/+', 'a/#'));
  t.notOk(covers('a/b', 'a/+'));
  t.notOk(covers('a/b/#', 'a/#'));
  t.notOk(covers('a/b', 'a/b/c'));
});
