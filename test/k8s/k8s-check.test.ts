import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { parseAllDocuments, stringify } from 'yaml';
import { runChecks, type CheckLine } from './check.js';

/**
 * `npm run k8s:check` passes on the repository's k3s/ and Containerfile, and refuses copies
 * broken one way at a time: each broken copy must fail with the rule and the object it broke.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHECK = join(ROOT, 'test/k8s/check.ts');

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHECK, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = ''; let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- YAML documents edited freely in a test
type Doc = Record<string, any>;

/** a fresh copy of k3s/ and the Containerfile, to break */
async function copy(t: Test): Promise<{ root: string; containerfile: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'yachay-k8s-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp(join(ROOT, 'k3s'), join(dir, 'k3s'), { recursive: true });
  await cp(join(ROOT, 'Containerfile'), join(dir, 'Containerfile'));
  return { root: join(dir, 'k3s'), containerfile: join(dir, 'Containerfile'), dir };
}

/** edits the document of `kind`/`name` in a YAML file of the copy */
async function editYaml(file: string, kind: string, name: string, edit: (d: Doc) => void): Promise<void> {
  const docs = parseAllDocuments(await readFile(file, 'utf8')).map((d) => d.toJS() as Doc);
  const hit = docs.find((d) => d.kind === kind && d.metadata?.name === name);
  if (!hit) throw new Error(`${kind} ${name} not in ${file}`);
  edit(hit);
  await writeFile(file, docs.map((d) => stringify(d)).join('---\n'));
}

async function editText(file: string, from: RegExp | string, to: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`${String(from)} not found in ${file}`);
  await writeFile(file, next);
}

const failures = (lines: CheckLine[]): CheckLine[] => lines.filter((l) => !l.ok);

/** asserts the checks failed on `what` (substring) in `bundle` with `rule` */
function refused(t: Test, lines: CheckLine[], bundle: string, what: string, rule: string): void {
  const f = failures(lines);
  const hit = f.find((l) => l.bundle === bundle && l.what.includes(what) && l.rule === rule);
  t.ok(hit, `${bundle} ${what} refused by [${rule}]`, { failures: f.map((l) => `${l.bundle} ${l.what} [${l.rule}] ${l.message}`) });
}

t.test('the repository passes: exit 0, one ok line per object', async (t) => {
  const r = await runCli([]);
  t.equal(r.code, 0, 'exit 0', { output: r.stdout + r.stderr });
  const lines = r.stdout.trim().split('\n');
  t.notOk(lines.some((l) => l.startsWith('FAIL')), 'no FAIL line');
  for (const want of [
    'ok  edge  apps/v1 Deployment yachay',
    'ok  hub  apps/v1 Deployment yachay-worker',
    'ok  hub  keda.sh/v1alpha1 ScaledObject yachay-worker',
    'ok  hub  apps/v1 StatefulSet yachay-mosquitto',
    'ok  hub  apps/v1 StatefulSet yachay-postgres',
    'ok  hub  networking.k8s.io/v1 NetworkPolicy default-deny',
    'ok  hub  policy/v1 PodDisruptionBudget yachay',
    'ok  hub  velero.io/v1 Schedule yachay-hub-nightly',
    'ok  fleet  fleet.cattle.io/v1alpha1 GitRepo yachay-edge',
    'ok  fleet:jetson  apps/v1 Deployment yachay',
    'ok  image  Containerfile',
  ]) t.ok(lines.includes(want), want);
  t.match(r.stdout, /ok {2}edge {2}memory limits [\d.]+ GiB of a 2\.75 GiB budget/);
  t.match(lines.at(-1), /^k8s:check: \d+ comprobaciones correctas \/ \d+ checks passed$/);
});

t.test('an untouched copy passes (the copies below fail only for what they break)', async (t) => {
  const c = await copy(t);
  t.same(failures(await runChecks(c)).map((l) => `${l.what} ${l.message}`), []);
});

t.test('a latest tag is refused, in an overlay and in a hub image', async (t) => {
  const c = await copy(t);
  await editText(join(c.root, 'overlays/edge/kustomization.yaml'), 'newTag: 0.1.0', 'newTag: latest');
  await editYaml(join(c.root, 'overlays/hub/app/mosquitto.yaml'), 'StatefulSet', 'yachay-mosquitto', (d) => { d.spec.template.spec.containers[0].image = 'eclipse-mosquitto'; });
  const lines = await runChecks(c);
  refused(t, lines, 'edge', 'Deployment yachay', 'image-pinned');
  refused(t, lines, 'hub', 'StatefulSet yachay-mosquitto', 'image-pinned');
  refused(t, lines, 'all', 'release', 'one-release');
});

t.test('a missing probe is refused', async (t) => {
  const c = await copy(t);
  await editYaml(join(c.root, 'overlays/hub/app/origin.yaml'), 'Deployment', 'yachay-origin', (d) => { delete d.spec.template.spec.containers[0].livenessProbe; });
  await editYaml(join(c.root, 'overlays/hub/app/worker.yaml'), 'Deployment', 'yachay-worker', (d) => { d.spec.template.spec.containers[0].readinessProbe.httpGet.port = 'htpp'; });
  const lines = await runChecks(c);
  refused(t, lines, 'hub', 'Deployment yachay-origin', 'probes');
  refused(t, lines, 'hub', 'Deployment yachay-worker', 'probes');
});

t.test('a privileged or root container is refused, whatever the way', async (t) => {
  const c = await copy(t);
  await editYaml(join(c.root, 'overlays/edge/deployment-patch.yaml'), 'Deployment', 'yachay', (d) => {
    d.spec.template.spec.containers[0].securityContext = { privileged: true, allowPrivilegeEscalation: true, readOnlyRootFilesystem: false, capabilities: { add: ['NET_ADMIN'] } };
  });
  await editYaml(join(c.root, 'overlays/hub/app/postgres.yaml'), 'StatefulSet', 'yachay-postgres', (d) => {
    d.spec.template.spec.securityContext.runAsUser = 0;
    delete d.spec.template.spec.containers[0].securityContext.runAsNonRoot;
    d.spec.template.spec.securityContext.runAsNonRoot = false;
    d.spec.template.spec.containers[0].securityContext.seccompProfile = { type: 'Unconfined' };
  });
  await editYaml(join(c.root, 'overlays/hub/app/origin.yaml'), 'Deployment', 'yachay-origin', (d) => {
    d.spec.template.spec.hostNetwork = true;
    d.spec.template.spec.volumes.push({ name: 'host', hostPath: { path: '/' } });
    d.spec.template.spec.containers[0].ports[0].hostPort = 80;
  });
  await editYaml(join(c.root, 'overlays/hub/app/namespace.yaml'), 'Namespace', 'yachay-hub', (d) => { d.metadata.labels = { 'pod-security.kubernetes.io/enforce': 'baseline' }; });
  const lines = await runChecks(c);
  for (const rule of ['not-privileged', 'no-privilege-escalation', 'read-only-root', 'capabilities']) refused(t, lines, 'edge', 'Deployment yachay', rule);
  for (const rule of ['run-as-non-root', 'seccomp']) refused(t, lines, 'hub', 'StatefulSet yachay-postgres', rule);
  for (const rule of ['host-namespaces', 'no-hostpath', 'host-ports']) refused(t, lines, 'hub', 'Deployment yachay-origin', rule);
  refused(t, lines, 'hub', 'Namespace yachay-hub', 'pod-security');
});

t.test('an invalid field is refused: wrong type, misspelt name, bad CRD fields', async (t) => {
  const c = await copy(t);
  await editYaml(join(c.root, 'overlays/hub/app/hub-patch.yaml'), 'Deployment', 'yachay', (d) => { d.spec.replicas = 'two'; });
  // kubectl would drop this silently: the container would keep a writable root
  await editYaml(join(c.root, 'base/deployment.yaml'), 'Deployment', 'yachay', (d) => {
    const sc = d.spec.template.spec.containers[0].securityContext;
    sc.readOnlyRootFileSystem = sc.readOnlyRootFilesystem;
  });
  await editYaml(join(c.root, 'overlays/hub/app/keda.yaml'), 'ScaledObject', 'yachay-worker', (d) => { d.spec.minReplicaCount = 'zero'; d.spec.triggers[0].metdata = {}; });
  await editYaml(join(c.root, 'overlays/hub/velero-schedule.yaml'), 'Schedule', 'yachay-hub-nightly', (d) => { d.spec.schedule = 'nightly'; d.spec.ttl = '720h'; });
  const lines = await runChecks(c);
  refused(t, lines, 'hub', 'apps/v1 Deployment yachay', 'schema');
  const unknown = failures(lines).find((l) => l.bundle === 'edge' && /unknown field .*readOnlyRootFileSystem/.test(l.message ?? ''));
  t.ok(unknown, 'the misspelt readOnlyRootFileSystem is named');
  const keda = failures(lines).filter((l) => l.what.includes('ScaledObject') && l.rule === 'schema').map((l) => l.message).join(' | ');
  t.match(keda, /minReplicaCount must be integer/);
  t.match(keda, /unknown field spec\.triggers\[0\]\.metdata/);
  const velero = failures(lines).filter((l) => l.what.includes('Schedule') && l.rule === 'schema').map((l) => l.message).join(' | ');
  t.match(velero, /\/spec\/schedule must match pattern/);
  t.match(velero, /additional properties \(ttl\)/);
});

t.test('broken references, a missing default deny and an oversized edge are refused', async (t) => {
  const c = await copy(t);
  await editYaml(join(c.root, 'overlays/hub/app/keda.yaml'), 'ScaledObject', 'yachay-worker', (d) => { d.spec.scaleTargetRef.name = 'yachay-workers'; });
  await editYaml(join(c.root, 'overlays/hub/app/origin.yaml'), 'Service', 'yachay-origin', (d) => { d.spec.selector = { 'app.kubernetes.io/name': 'origin' }; });
  await editYaml(join(c.root, 'overlays/hub/app/network-policies.yaml'), 'NetworkPolicy', 'default-deny', (d) => { d.spec.podSelector = { matchLabels: { a: 'b' } }; });
  await editYaml(join(c.root, 'overlays/edge/deployment-patch.yaml'), 'Deployment', 'yachay', (d) => { d.spec.template.spec.containers[0].resources.limits.memory = '3584Mi'; });
  const lines = await runChecks(c);
  refused(t, lines, 'hub', 'ScaledObject yachay-worker', 'references');
  refused(t, lines, 'hub', 'Service yachay-origin', 'references');
  refused(t, lines, 'hub', 'Deployment', 'network-default-deny');
  refused(t, lines, 'edge', 'memory', 'board-memory');
  refused(t, lines, 'fleet:raspberry-pi', 'memory', 'board-memory');
});

t.test('kustomize features the renderer does not implement are refused, not ignored', async (t) => {
  const c = await copy(t);
  await editText(join(c.root, 'overlays/edge/kustomization.yaml'), 'namespace: yachay', 'namespace: yachay\nreplicas:\n  - name: yachay\n    count: 2');
  refused(t, await runChecks(c), 'edge', 'render', 'render');
});

t.test('the Fleet bundle is checked: labels, boards, options file', async (t) => {
  const c = await copy(t);
  await editText(join(c.root, 'fleet/fleet.yaml'), 'hardware: jetson-orin-nano', 'hardware: jetson-nano-2gb');
  await editText(join(c.root, 'fleet/gitrepo.yaml'), 'options: fleet/fleet.yaml', 'options: fleet.yaml');
  let lines = await runChecks(c);
  refused(t, lines, 'fleet', 'fleet.yaml', 'fleet-labels');
  refused(t, lines, 'fleet', 'GitRepo yachay-edge', 'fleet-bundle');
  await editText(join(c.root, 'fleet/fleet.yaml'), 'defaultNamespace: yachay', 'defaultNamespace: yachay\nhelm:\n  chart: x');
  lines = await runChecks(c);
  refused(t, lines, 'fleet', 'fleet.yaml', 'schema');
});

t.test('the Containerfile: latest base, root user, curl | sh, HEALTHCHECK, missing packages', async (t) => {
  const c = await copy(t);
  await editText(c.containerfile, /ARG NODE_IMAGE=\S+/, 'ARG NODE_IMAGE=node:latest');
  await editText(c.containerfile, 'USER 10001:10001', 'USER root');
  await editText(c.containerfile, 'WORKDIR /app\nENV NODE_ENV', 'WORKDIR /app\nRUN curl -fsSL https://example.invalid/install.sh | sh\nHEALTHCHECK CMD node -e 1\nENV NODE_ENV');
  await editText(c.containerfile, ' tesseract-ocr-spa', '');
  const lines = (await runChecks(c)).filter((l) => l.bundle === 'image');
  for (const rule of ['base-pinned', 'non-root-user', 'no-pipe-to-shell', 'no-healthcheck', 'runtime-packages']) refused(t, lines, 'image', 'Containerfile', rule);
});

t.test('the command exits non-zero and names the object and the rule', async (t) => {
  const c = await copy(t);
  await editYaml(join(c.root, 'overlays/hub/app/origin.yaml'), 'Deployment', 'yachay-origin', (d) => { d.spec.template.spec.containers[0].image = 'nginxinc/nginx-unprivileged:latest'; });
  const r = await runCli(['--root', c.root, '--containerfile', c.containerfile]);
  t.equal(r.code, 1);
  t.match(r.stdout, /^FAIL {2}hub {2}apps\/v1 Deployment yachay-origin {2}\[image-pinned\] container nginx: nginxinc\/nginx-unprivileged:latest uses a moving tag$/m);
  t.match(r.stdout, /k8s:check: 1 problema\(s\) en \d+ comprobaciones \/ 1 problem\(s\) in \d+ checks/);
});
