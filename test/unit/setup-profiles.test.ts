import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// issue 12 item 5: `npm start` installs only what a school box runs; `npm test` adds the test tools
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SETUP = 'provisioning/setup-dev.sh';

/** A script without --dry-run would take the flags for package names and call apt-get. */
function guard(): void {
  if (!/--dry-run\)/.test(readFileSync(`${ROOT}/${SETUP}`, 'utf8'))) throw new Error(`${SETUP} has no --dry-run: not running it`);
}

function packages(args: string[], arch = 'x86_64'): string[] {
  guard();
  const r = spawnSync('bash', [SETUP, ...args, '--dry-run'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, SETUP_ARCH: arch } });
  if (r.status !== 0) throw new Error(`setup-dev.sh ${args.join(' ')} --dry-run exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim().split('\n');
}

const BOX_NEEDS = ['ffmpeg', 'espeak-ng', 'tesseract-ocr', 'tesseract-ocr-spa', 'tesseract-ocr-eng', 'fonts-dejavu-core', 'g++', 'make', 'python3'];
const NOT_ON_A_BOX = /^(chromium|qemu|g\+\+-aarch64|gcc-aarch64|postgresql|nginx|rsync|prometheus|mosquitto)/;

t.test('box profile: the tools the box runs, no browser, emulator, cross compiler or hub servers', async (t) => {
  for (const arch of ['x86_64', 'aarch64']) {
    const box = packages(['--profile', 'box'], arch);
    t.same(box.filter((p) => NOT_ON_A_BOX.test(p)), [], `${arch}: nothing a school box does not run (${box.join(' ')})`);
    for (const p of BOX_NEEDS) t.ok(box.includes(p), `${arch}: box gets ${p}`);
  }
  t.same(packages([]), packages(['--profile', 'box']), 'no profile means box');
});

t.test('test profile: the box plus the test tools', async (t) => {
  const x86 = packages(['--profile', 'test']);
  for (const p of [...BOX_NEEDS, 'chromium', 'postgresql', 'mosquitto', 'qemu-user-static', 'g++-aarch64-linux-gnu']) {
    t.ok(x86.includes(p), `x86_64 test gets ${p}`);
  }
  const arm = packages(['--profile=test'], 'aarch64');
  t.ok(arm.includes('chromium'), 'aarch64 test gets chromium');
  t.notOk(arm.some((p) => /qemu|aarch64-linux-gnu/.test(p)), 'an arm64 machine runs NEON natively: no emulator');
});

t.test('hub profile: the box plus the hub\'s own servers, no test tools', async (t) => {
  const hub = packages(['--profile', 'hub']);
  for (const p of [...BOX_NEEDS, 'postgresql', 'mosquitto']) t.ok(hub.includes(p), `hub gets ${p}`);
  t.notOk(hub.some((p) => /^(chromium|qemu|g\+\+-aarch64|nginx|prometheus)/.test(p)), hub.join(' '));
});

t.test('an unknown profile is refused', async (t) => {
  guard();
  const r = spawnSync('bash', [SETUP, '--profile', 'school', '--dry-run'], { cwd: ROOT, encoding: 'utf8' });
  t.equal(r.status, 64);
  t.match(r.stderr, /box .*test/);
});

t.test('npm start and demo set up the box, npm test and CI the test tools', async (t) => {
  const scripts = (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { scripts: Record<string, string> }).scripts;
  t.match(scripts.start, /^bash provisioning\/setup-dev\.sh --profile box && /);
  t.match(scripts.demo, /^bash provisioning\/setup-dev\.sh --profile box && /);
  t.match(scripts.test, /^bash provisioning\/setup-dev\.sh --profile test && bash test\/run\.sh/);
  t.match(readFileSync(`${ROOT}/.ci/run`, 'utf8'), /setup-dev\.sh --profile test/);
});
