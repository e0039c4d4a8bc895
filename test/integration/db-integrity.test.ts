import t from 'tap';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openDb } from '../../daemon/db/db.js';
import { yachay } from '../helpers/cli.js';

// issue 10, item 9: a damaged database used to reset the box silently or crash with a stack trace

t.test('an empty database file is refused, naming the file and the restore step', async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'yachay.db'), '');
  t.throws(() => openDb(join(dir, 'yachay.db')), { code: 'YCH_ERR_DATABASE', message: /yachay\.db is an empty file/ });
  const r = await yachay(['users', 'list', '--data-dir', dir]);
  t.equal(r.code, 76, 'the CLI exits 76');
  t.match(r.stderr, /YCH_ERR_DATABASE.*yachay\.db/);
  t.match(r.stderr, /restore the last backup/);
  t.notMatch(r.stderr, /    at /, 'no stack trace');
});

t.test('a garbage header and a damaged page are refused at start', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'yachay.db');
  writeFileSync(path, Buffer.alloc(8192, 'x'));
  t.throws(() => openDb(path), { code: 'YCH_ERR_DATABASE' }, 'not a database');
  const good = join(dir, 'good.db');
  const db = openDb(good);
  const add = db.prepare(`INSERT INTO users (username, role, password_hash, created_at) VALUES (?, 'teacher', 'scrypt$x', 0)`);
  for (let i = 0; i < 500; i++) add.run(`maestra${i}`);
  const { rootpage } = db.prepare(`SELECT rootpage FROM sqlite_master WHERE name = 'users'`).get() as { rootpage: number };
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  t.equal(statSync(good).mode & 0o777, 0o600, 'the database file is readable by the box only');
  // one bad page: the users table's root page gets a page type that does not exist
  const buf = readFileSync(good);
  buf[(rootpage - 1) * pageSize] = 0x07;
  writeFileSync(good, buf);
  t.throws(() => openDb(good), { code: 'YCH_ERR_DATABASE', message: /good\.db cannot be used/ });
});
