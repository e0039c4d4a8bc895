import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// issue 11, item 2: the units pass systemd's own checks, and the box's is hardened to ≤ 2.0
const DIR = fileURLToPath(new URL('../../systemd/', import.meta.url));
const UNITS = ['yachay.service', 'yachay-backup.service', 'yachay-backup.timer', 'yachay-update-guard.service', 'yachay-update-guard.path'];

t.test('systemd-analyze verify finds nothing in the units', async (t) => {
  const r = spawnSync('systemd-analyze', ['verify', ...UNITS.map((u) => DIR + u)], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr.trim(), '', 'no warnings');
});

t.test('exposure by systemd-analyze security', async (t) => {
  for (const [unit, max] of [['yachay.service', 2.0], ['yachay-backup.service', 2.5], ['yachay-update-guard.service', 2.0]] as const) {
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', DIR + unit], { encoding: 'utf8' });
    const level = Number(/Overall exposure level for [^:]+: ([\d.]+)/.exec(r.stdout)?.[1]);
    t.ok(level <= max, `${unit}: exposure ${level} (≤ ${max})`);
  }
});
