import t from 'tap';
import { AttemptLimiter, codeHash, newCode, normalizeCode, parseChannels, checkSchool } from '../../../daemon/hub/enroll.js';
import { checkPassword, hashPassword, renderAcl, renderPasswd } from '../../../daemon/hub/broker-auth.js';
import { lessonIdFrom } from '../../../daemon/hub/ingest.js';
import { mosquittoConfig } from '../../../daemon/hub/mosquitto.js';
import { LESSON_ID } from '../../../daemon/catalog/lessons.js';

t.test('enrollment codes: 12 typeable characters, any case or look-alike typed the same', async (t) => {
  const codes = new Set(Array.from({ length: 2000 }, () => newCode()));
  t.equal(codes.size, 2000, 'no repeats in 2,000');
  for (const c of [...codes].slice(0, 50)) t.match(c, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
  t.equal(normalizeCode(' ab1o-il2z-0000 '), 'AB10112Z0000');
  t.equal(codeHash('AB10-112Z-0000'), codeHash('ab1o il2z 0000'), 'O/0 and I/L/1 read the same');
  t.not(codeHash('AB10-112Z-0000'), codeHash('AB10-112Z-0001'));
});

t.test('school and channel names are what topics and usernames can carry', async (t) => {
  t.equal(checkSchool('ie-54321-puno'), 'ie-54321-puno');
  for (const bad of ['', 'IE', 'a/b', '+', '#', 'x'.repeat(41), '-a', 'a b']) {
    t.throws(() => checkSchool(bad), { code: 'YCH_ERR_USAGE' }, JSON.stringify(bad));
  }
  t.same(parseChannels('primaria, ciencia,primaria'), ['primaria', 'ciencia']);
  t.throws(() => parseChannels('primaria,#'));
  t.throws(() => parseChannels(','));
  t.equal(parseChannels(undefined), undefined);
});

t.test('passwords in Mosquitto 2 $7$ format check against themselves only', async (t) => {
  const h = hashPassword('s3creta');
  t.match(h, /^\$7\$1000\$[A-Za-z0-9+/=]{16}\$[A-Za-z0-9+/=]{88}$/);
  t.ok(checkPassword('s3creta', h));
  t.notOk(checkPassword('s3cretb', h));
  t.not(hashPassword('s3creta'), h, 'salted');
});

t.test('ACL: each box reads its channels and school, writes its up-topics; the hub everything', async (t) => {
  const acl = renderAcl([{ school: 'esc-a', username: 'box-esc-a', passwordHash: 'x', channels: ['primaria', 'ciencia'] }]);
  const block = acl.split('user box-esc-a\n')[1]!.trim().split('\n');
  t.same(block, [
    'topic read yachay/catalog/primaria/#', 'topic read yachay/catalog/ciencia/#',
    'topic read yachay/esc-a/assign/#', 'topic read yachay/esc-a/cmd/#', 'topic read yachay/release/#',
    'topic write yachay/esc-a/status', 'topic write yachay/esc-a/telemetry', 'topic write yachay/esc-a/sync/#',
    'topic write yachay/esc-a/request/#', 'topic write yachay/esc-a/usage', 'topic write yachay/esc-a/feedback',
    'topic write yachay/esc-a/update',
  ]);
  t.match(acl, /user hub\ntopic readwrite #/);
  t.notMatch(acl, /pattern|readwrite yachay/, 'no box gets readwrite');
  t.equal(renderPasswd('H', [{ school: 'a', username: 'box-a', passwordHash: 'P', channels: [] }]), 'hub:H\nbox-a:P\n');
});

t.test('Mosquitto config: nothing anonymous, persistence on, deep queues, loopback by default', async (t) => {
  const c = mosquittoConfig('/d/mosquitto', { port: 1884, bind: '127.0.0.1' }, { passwd: '/d/mosquitto/passwd', acl: '/d/mosquitto/acl' }, 'mosquitto');
  for (const line of ['allow_anonymous false', 'persistence true', 'password_file /d/mosquitto/passwd', 'acl_file /d/mosquitto/acl', 'listener 1884 127.0.0.1', 'user mosquitto', 'log_dest file /d/mosquitto/mosquitto.log']) {
    t.ok(c.split('\n').includes(line), line);
  }
  const q = Number(/max_queued_messages (\d+)/.exec(c)![1]);
  t.ok(q >= 100_000, `max_queued_messages ${q}: weeks of catalog entries for an offline box`);
});

t.test('lesson ids from titles', async (t) => {
  t.equal(lessonIdFrom('Ciencia: el ciclo del agua'), 'ciencia-el-ciclo-del-agua');
  t.equal(lessonIdFrom('Año Nuevo — ¿Qué aprendimos?'), 'ano-nuevo-que-aprendimos');
  t.equal(lessonIdFrom('¡¡¡'), 'leccion');
  t.ok(LESSON_ID.test(lessonIdFrom('x'.repeat(200) + ' y')));
});

t.test('enroll attempts: 10 per minute per address, counted separately', async (t) => {
  const l = new AttemptLimiter(10, 60_000);
  const now = 1_000_000;
  for (let i = 0; i < 10; i++) t.ok(l.allow('1.2.3.4', now + i));
  t.notOk(l.allow('1.2.3.4', now + 11), 'the 11th within a minute is refused');
  t.ok(l.allow('5.6.7.8', now + 12), 'another address is not affected');
  t.ok(l.allow('1.2.3.4', now + 60_001), 'a minute later it may try again');
});
