import { readFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ownSchemaFor, validateOwn } from './crd-schemas.js';
import { checkContainerfile } from './containerfile.js';
import { checkHostAccess, checkPolicies, checkReferences, memoryLimitTotal, type Problem } from './policy.js';
import { containersOf, isObj, loadYamlFile, parseImage, podSpecs, renderKustomization, type K8sObject } from './render.js';
import { validateObject } from './schema.js';

/**
 * `npm run k8s:check`: renders k3s/overlays/edge, k3s/overlays/hub and the Fleet bundle
 * (k3s/fleet), validates every object against its schema, applies the policy rules, and
 * checks the Containerfile. One line per object; exit 1 when anything is refused.
 *   tsx test/k8s/check.ts [--root DIR] [--containerfile FILE]
 */
export interface CheckLine { ok: boolean; bundle: string; what: string; rule?: string; message?: string }

/** memory of each board Fleet may target (GiB), and what the OS and k3s keep of it */
export const BOARD_GIB: Record<string, number> = { 'rpi4-4gb': 4, 'rpi5-4gb': 4, 'rpi5-8gb': 8, 'jetson-orin-nano': 8 };
const SYSTEM_RESERVE_GIB = 1.25;
const GiB = 2 ** 30;

const what = (o: K8sObject): string => `${o.apiVersion} ${o.kind} ${o.metadata.name}`;

interface BundleOpts { requireDefaultDeny: boolean; allowHostPorts?: boolean; memoryBudgetGiB?: number; board?: string; collect: K8sObject[] }

async function checkObjects(bundle: string, objects: K8sObject[], opts: BundleOpts): Promise<CheckLine[]> {
  const lines: CheckLine[] = [];
  opts.collect.push(...objects);
  const refs = checkReferences(objects, opts);
  for (const o of objects) {
    const own = ownSchemaFor(o.apiVersion, o.kind);
    const problems: Problem[] = (own ? validateOwn(own, o) : validateObject(o)).map((m) => ({ rule: 'schema', message: m.replace(/^schema: /, '') }));
    problems.push(...checkPolicies(o), ...checkHostAccess(o, opts.allowHostPorts === true), ...(refs.get(o) ?? []));
    if (!problems.length) lines.push({ ok: true, bundle, what: what(o) });
    for (const p of problems) lines.push({ ok: false, bundle, what: what(o), rule: p.rule, message: p.message });
  }
  if (opts.memoryBudgetGiB !== undefined) {
    const total = memoryLimitTotal(objects) / GiB;
    const msg = `memory limits ${total.toFixed(2)} GiB of a ${opts.memoryBudgetGiB.toFixed(2)} GiB budget (${opts.board})`;
    lines.push(total <= opts.memoryBudgetGiB && Number.isFinite(total)
      ? { ok: true, bundle, what: msg }
      : { ok: false, bundle, what: 'memory', rule: 'board-memory', message: msg });
  }
  return lines;
}

async function bundleLines(bundle: string, render: () => Promise<K8sObject[]>, opts: BundleOpts): Promise<CheckLine[]> {
  let objects: K8sObject[];
  try { objects = await render(); } catch (err) { return [{ ok: false, bundle, what: 'render', rule: 'render', message: (err as Error).message }]; }
  if (!objects.length) return [{ ok: false, bundle, what: 'render', rule: 'render', message: 'no objects' }];
  return checkObjects(bundle, objects, opts);
}

const budget = (board: string): number => (BOARD_GIB[board] ?? 0) - SYSTEM_RESERVE_GIB;

/** the boards a cluster selector can match, from its `hardware` label (matchLabels or In) */
function boardsOf(selector: unknown): string[] | undefined {
  if (!isObj(selector)) return undefined;
  const ml = isObj(selector.matchLabels) ? selector.matchLabels.hardware : undefined;
  if (typeof ml === 'string') return [ml];
  for (const e of (Array.isArray(selector.matchExpressions) ? selector.matchExpressions : []) as Record<string, unknown>[]) {
    if (e.key === 'hardware' && e.operator === 'In' && Array.isArray(e.values)) return e.values as string[];
  }
  return undefined;
}

/** selectors may only use the labels schools are registered with */
function selectorKeys(selector: unknown): string[] {
  if (!isObj(selector)) return [];
  const keys = Object.keys(isObj(selector.matchLabels) ? selector.matchLabels : {});
  for (const e of (Array.isArray(selector.matchExpressions) ? selector.matchExpressions : []) as Record<string, unknown>[]) keys.push(String(e.key));
  return keys;
}

async function fleetLines(root: string, collect: K8sObject[]): Promise<CheckLine[]> {
  const bundle = 'fleet';
  const lines: CheckLine[] = [];
  const fail = (w: string, rule: string, message: string): void => { lines.push({ ok: false, bundle, what: w, rule, message }); };
  let fleet: Record<string, unknown>;
  let gitrepo: K8sObject;
  try {
    fleet = (await loadYamlFile(join(root, 'fleet', 'fleet.yaml')))[0] as Record<string, unknown>;
    gitrepo = (await loadYamlFile(join(root, 'fleet', 'gitrepo.yaml')))[0] as K8sObject;
  } catch (err) { return [{ ok: false, bundle, what: 'render', rule: 'render', message: (err as Error).message }]; }

  const fy = validateOwn('fleet.yaml', fleet);
  fy.forEach((m) => fail('fleet.yaml', 'schema', m.replace(/^schema: /, '')));
  const gr = validateOwn('fleet.cattle.io/v1alpha1 GitRepo', gitrepo);
  gr.forEach((m) => fail(what(gitrepo), 'schema', m.replace(/^schema: /, '')));
  if (fy.length || gr.length) return lines;

  // the GitRepo must name this k3s/ folder as the bundle base and fleet/fleet.yaml as its options
  const spec = gitrepo.spec as { bundles?: { base: string; options?: string }[]; targets?: { clusterSelector?: unknown }[] };
  const repoRoot = dirname(resolve(root));
  const ours = (spec.bundles ?? []).find((b) => resolve(repoRoot, b.base) === resolve(root) && b.options && resolve(root, b.options) === resolve(root, 'fleet', 'fleet.yaml'));
  if (!ours) fail(what(gitrepo), 'fleet-bundle', `no bundles entry with base ${relative(repoRoot, root)} and options fleet/fleet.yaml`);
  const selectors = [
    ...(spec.targets ?? []).map((t) => t.clusterSelector),
    ...((fleet.targetCustomizations ?? []) as { clusterSelector?: unknown }[]).map((t) => t.clusterSelector),
    ...(((fleet.rolloutStrategy as { partitions?: { clusterSelector?: unknown }[] } | undefined)?.partitions) ?? []).map((p) => p.clusterSelector),
  ];
  for (const s of selectors) {
    const extra = selectorKeys(s).filter((k) => k !== 'region' && k !== 'hardware');
    if (extra.length) fail('fleet.yaml', 'fleet-labels', `a cluster selector uses ${extra.join(', ')}: schools are labelled by region and hardware only`);
    for (const b of boardsOf(s) ?? []) if (!(b in BOARD_GIB)) fail('fleet.yaml', 'fleet-labels', `hardware ${b} is not a known board (${Object.keys(BOARD_GIB).join(', ')})`);
  }
  if (!lines.length) lines.push({ ok: true, bundle, what: what(gitrepo) }, { ok: true, bundle, what: 'fleet.yaml' });

  // what each cluster gets: the default dir for boards no customization claims, then each customization
  const allBoards = (spec.targets ?? []).flatMap((t) => boardsOf(t.clusterSelector) ?? Object.keys(BOARD_GIB));
  const claimed = new Set<string>();
  for (const t of (fleet.targetCustomizations ?? []) as { name: string; clusterSelector?: unknown; kustomize?: { dir: string } }[]) {
    const boards = boardsOf(t.clusterSelector) ?? allBoards;
    boards.forEach((b) => claimed.add(b));
    const smallest = boards.reduce((a, b) => (budget(b) < budget(a) ? b : a), boards[0] ?? '');
    const dir = t.kustomize?.dir ?? (fleet.kustomize as { dir: string }).dir;
    lines.push(...await bundleLines(`fleet:${t.name}`, () => renderKustomization(join(root, dir)), { requireDefaultDeny: false, allowHostPorts: true, memoryBudgetGiB: budget(smallest), board: smallest, collect }));
  }
  const rest = allBoards.filter((b) => !claimed.has(b));
  if (rest.length) {
    const smallest = rest.reduce((a, b) => (budget(b) < budget(a) ? b : a), rest[0]!);
    lines.push(...await bundleLines('fleet:default', () => renderKustomization(join(root, (fleet.kustomize as { dir: string }).dir)), { requireDefaultDeny: false, allowHostPorts: true, memoryBudgetGiB: budget(smallest), board: smallest, collect }));
  }
  return lines;
}

export async function runChecks(opts: { root: string; containerfile: string }): Promise<CheckLine[]> {
  const { root } = opts;
  const lines: CheckLine[] = [];
  const collect: K8sObject[] = [];
  // the edge overlay must fit the smallest board a school gets
  lines.push(...await bundleLines('edge', () => renderKustomization(join(root, 'overlays', 'edge')), { requireDefaultDeny: false, allowHostPorts: true, memoryBudgetGiB: budget('rpi4-4gb'), board: 'rpi4-4gb', collect }));
  lines.push(...await bundleLines('hub', () => renderKustomization(join(root, 'overlays', 'hub')), { requireDefaultDeny: true, collect }));
  lines.push(...await fleetLines(root, collect));
  // boxes and hub speak one protocol version: every overlay runs the same yachay release
  const releases = new Set(collect.flatMap((o) => podSpecs(o)).flatMap((p) => containersOf(p))
    .map(({ c }) => String(c.image)).filter((i) => /(^|\/)yachay$/.test(parseImage(i).name)));
  lines.push(releases.size === 1
    ? { ok: true, bundle: 'all', what: `one yachay release: ${[...releases][0]!}` }
    : { ok: false, bundle: 'all', what: 'release', rule: 'one-release', message: `${releases.size} yachay images: ${[...releases].join(', ') || 'none'}` });
  const name = basename(opts.containerfile);
  try {
    const problems = checkContainerfile(await readFile(opts.containerfile, 'utf8'));
    if (!problems.length) lines.push({ ok: true, bundle: 'image', what: name });
    for (const p of problems) lines.push({ ok: false, bundle: 'image', what: name, rule: p.rule, message: p.message });
  } catch (err) {
    lines.push({ ok: false, bundle: 'image', what: name, rule: 'read', message: (err as Error).message });
  }
  return lines;
}

export function formatLine(l: CheckLine): string {
  return l.ok ? `ok  ${l.bundle}  ${l.what}` : `FAIL  ${l.bundle}  ${l.what}  [${l.rule}] ${l.message}`;
}

async function main(argv: string[]): Promise<number> {
  const repo = fileURLToPath(new URL('../../', import.meta.url));
  let root = join(repo, 'k3s');
  let containerfile = join(repo, 'Containerfile');
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--root') root = resolve(argv[++i] ?? '');
    else if (argv[i] === '--containerfile') containerfile = resolve(argv[++i] ?? '');
    else { console.error(`k8s:check: unknown argument ${argv[i]} (use --root DIR, --containerfile FILE)`); return 64; }
  }
  const lines = await runChecks({ root, containerfile });
  for (const l of lines) console.log(formatLine(l));
  const failed = lines.filter((l) => !l.ok);
  console.log(failed.length
    ? `k8s:check: ${failed.length} problema(s) en ${lines.length} comprobaciones / ${failed.length} problem(s) in ${lines.length} checks`
    : `k8s:check: ${lines.length} comprobaciones correctas / ${lines.length} checks passed`);
  return failed.length ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
