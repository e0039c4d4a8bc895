import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, yachay } from '../helpers/cli.js';

// `yachay --version` alone used to print the help (the command check came first)
t.test('yachay --version prints the running version and exits 0', async (t) => {
  const r = await yachay(['--version']);
  t.equal(r.code, 0, r.stderr);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  t.equal(r.stdout.trim(), pkg.version);
});
