import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { SetupToken } from '../../daemon/users/setup-token.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { buildApp } from '../../daemon/http/server.js';

// No default passwords: the first admin comes from `yachay users add` or from the one-time code
// the box prints at its first start. These tests walk the second way and its refusals.
async function box(t: Test, loginAttemptsPerMinute = 3) {
  const dir = t.testdir();
  const db = openDb(join(dir, 'yachay.db'));
  t.teardown(() => db.close());
  const users = new Users(db);
  const file = join(dir, 'setup-token');
  const setup = await SetupToken.forBox(users, file);
  const app = await buildApp({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 10, loginAttemptsPerMinute, studentsNeedLogin: false },
    log: pino({ level: 'silent' }), db, store: join(dir, 'store'), lessons: new Lessons(db), users, health: () => ({}), setup,
  });
  t.teardown(() => app.close());
  return { app, users, setup, file };
}

const account = { username: 'directora', password: 'una clave larga 123' };

t.test('the setup code creates the first admin once, then is void', async (t) => {
  const { app, users, setup, file } = await box(t);
  const code = setup.token!;
  t.match(code, /^[A-Za-z0-9_-]{24}$/, '18 random bytes, base64url');
  t.equal(readFileSync(file, 'utf8').trim(), code);
  t.same((await app.inject({ url: '/api/setup' })).json(), { needed: true });

  const short = await app.inject({ method: 'POST', url: '/api/setup', payload: { token: code, username: 'directora', password: 'corta' } });
  t.equal(short.statusCode, 400);
  t.match(short.json().message, /at least 10 characters/, 'says what is wrong with the password');
  t.same((await app.inject({ url: '/api/setup' })).json(), { needed: true }, 'a refused account does not use up the code');

  const made = await app.inject({ method: 'POST', url: '/api/setup', payload: { token: code, ...account, bearer: true } });
  t.equal(made.statusCode, 201);
  const session = made.json() as { token: string; role: string };
  t.equal(session.role, 'admin');
  t.match(made.headers['set-cookie'], /yachay_session=.*HttpOnly; SameSite=Strict/);
  t.equal(users.get('directora')?.role, 'admin');
  t.notOk(existsSync(file), 'the code file is gone');

  const again = await app.inject({ method: 'POST', url: '/api/setup', payload: { token: code, username: 'intrusa', password: 'otra clave larga 123' } });
  t.equal(again.statusCode, 409, 'the same code cannot make a second admin');
  t.notOk(users.get('intrusa'));

  // the new admin gives a teacher an account, and the teacher logs in with it
  const auth = { authorization: `Bearer ${session.token}` };
  const teacher = await app.inject({ method: 'POST', url: '/api/users', headers: auth, payload: { username: 'prof.quispe', password: 'clave de docente 1' } });
  t.equal(teacher.statusCode, 201);
  t.equal(teacher.json().role, 'teacher');
  t.equal((await app.inject({ method: 'POST', url: '/api/users', headers: auth, payload: { username: 'prof.quispe', password: 'clave de docente 2' } })).statusCode, 409, 'an existing account is not overwritten');
  const login = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'prof.quispe', password: 'clave de docente 1', bearer: true } });
  t.equal(login.statusCode, 200);
  const teacherAuth = { authorization: `Bearer ${login.json().token}` };
  t.equal((await app.inject({ method: 'POST', url: '/api/users', headers: teacherAuth, payload: { username: 'otra', password: 'clave de docente 3' } })).statusCode, 403, 'teachers cannot make accounts');
  t.equal((await app.inject({ url: '/api/users', headers: teacherAuth })).statusCode, 403);
  t.equal((await app.inject({ method: 'POST', url: '/api/users', payload: { username: 'otra', password: 'clave de docente 3' } })).statusCode, 401);
  const list = (await app.inject({ url: '/api/users', headers: auth })).json() as { users: Array<{ username: string; role: string }> };
  t.same(list.users.map((u) => [u.username, u.role]), [['directora', 'admin'], ['prof.quispe', 'teacher']]);
});

t.test('wrong codes are refused and limited like wrong passwords', async (t) => {
  const { app, setup, users } = await box(t, 3);
  for (let i = 0; i < 3; i++) {
    const r = await app.inject({ method: 'POST', url: '/api/setup', payload: { token: `wrong-${i}`, ...account } });
    t.equal(r.statusCode, 401);
    t.match(r.json().message, /setup-token/, 'says where the right code is');
  }
  const limited = await app.inject({ method: 'POST', url: '/api/setup', payload: { token: setup.token!, ...account } });
  t.equal(limited.statusCode, 429, 'even the right code waits once the limit is reached');
  t.ok(Number(limited.headers['retry-after']) > 0);
  t.notOk(users.get('directora'));
});

t.test('an admin made in a terminal voids the code', async (t) => {
  const { app, users, file, setup } = await box(t);
  await users.add('tecnico', 'clave del tecnico 1', 'admin');
  t.same((await app.inject({ url: '/api/setup' })).json(), { needed: false });
  t.notOk(existsSync(file), 'the code file is removed as soon as it is void');
  const r = await app.inject({ method: 'POST', url: '/api/setup', payload: { token: setup.token!, ...account } });
  t.equal(r.statusCode, 409);
  // and a box that already has an admin prints no code at its next start
  const next = await SetupToken.forBox(users, file);
  t.equal(next.token, undefined);
  t.notOk(existsSync(file));
});

// issue 10, item 10: the code shown twice at the same moment made two admins
t.test('the setup code shown by two requests at once creates one admin', async (t) => {
  const { app, users, setup } = await box(t);
  const code = setup.token!;
  const [a, b] = await Promise.all([
    app.inject({ method: 'POST', url: '/api/setup', payload: { token: code, username: 'directora', password: 'una clave larga 123' } }),
    app.inject({ method: 'POST', url: '/api/setup', payload: { token: code, username: 'intrusa', password: 'otra clave larga 123' } }),
  ]);
  t.same([a.statusCode, b.statusCode].sort(), [201, 409], 'one created, the other told setup is done');
  t.equal(users.count('admin'), 1, 'one admin');
});
