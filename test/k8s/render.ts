import { readFile, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * A small kustomize renderer for the subset k3s/ uses: resources (files and directories),
 * patches (strategic merge by kind + name), namespace, commonLabels, images. No kustomize
 * binary exists on a developer's machine or in CI; a key outside this subset is refused
 * rather than ignored, so the check never passes a kustomization it did not really render.
 */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

type Json = Record<string, unknown>;

const SUPPORTED = new Set(['apiVersion', 'kind', 'resources', 'patches', 'namespace', 'commonLabels', 'images']);

/** kinds the namespace transformer leaves alone (cluster-scoped), as kustomize does */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolume', 'StorageClass',
  'CustomResourceDefinition', 'PriorityClass', 'IngressClass', 'RuntimeClass', 'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration', 'APIService']);

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

export class RenderError extends Error {}

export function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export async function loadYamlFile(file: string): Promise<unknown[]> {
  const text = await readFile(file, 'utf8');
  const docs = parseAllDocuments(text);
  const out: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new RenderError(`${file}: ${doc.errors[0]!.message}`);
    const v = doc.toJS();
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

function asObject(v: unknown, where: string): K8sObject {
  if (!isObj(v) || typeof v.apiVersion !== 'string' || typeof v.kind !== 'string' || !isObj(v.metadata) || typeof v.metadata.name !== 'string') {
    throw new RenderError(`${where}: not a Kubernetes object (apiVersion, kind and metadata.name are needed)`);
  }
  return v as K8sObject;
}

/** Renders the kustomization in `dir` (kustomization.yaml) into a flat list of objects. */
export async function renderKustomization(dir: string, seen: string[] = []): Promise<K8sObject[]> {
  const abs = resolve(dir);
  if (seen.includes(abs)) throw new RenderError(`${abs}: kustomization cycle (${seen.join(' -> ')})`);
  const file = join(abs, 'kustomization.yaml');
  const [k] = await loadYamlFile(file).catch((err: Error) => { throw new RenderError(`${file}: ${err.message}`); });
  if (!isObj(k)) throw new RenderError(`${file}: empty or not a map`);
  for (const key of Object.keys(k)) {
    if (!SUPPORTED.has(key)) throw new RenderError(`${file}: "${key}" is outside the kustomize subset this renderer implements (${[...SUPPORTED].join(', ')})`);
  }
  const objects: K8sObject[] = [];
  for (const r of (k.resources ?? []) as unknown[]) {
    if (typeof r !== 'string') throw new RenderError(`${file}: resources must be paths`);
    const p = join(abs, r);
    const st = await stat(p).catch(() => null);
    if (!st) throw new RenderError(`${file}: resource ${r} does not exist`);
    if (st.isDirectory()) objects.push(...await renderKustomization(p, [...seen, abs]));
    else {
      const docs = await loadYamlFile(p);
      docs.forEach((d, i) => objects.push(asObject(d, `${relative(process.cwd(), p)}#${i}`)));
    }
  }
  for (const p of (k.patches ?? []) as unknown[]) {
    if (!isObj(p) || typeof p.path !== 'string') throw new RenderError(`${file}: each patch needs a path (strategic merge)`);
    const pf = join(abs, p.path);
    for (const patch of await loadYamlFile(pf)) applyPatch(objects, asObject(patch, pf), pf);
  }
  if (isObj(k.commonLabels)) addLabels(objects, k.commonLabels as Record<string, string>);
  if (Array.isArray(k.images)) setImages(objects, k.images as unknown[], file);
  if (typeof k.namespace === 'string') {
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  }
  return objects;
}

function applyPatch(objects: K8sObject[], patch: K8sObject, where: string): void {
  const ns = patch.metadata.namespace;
  const target = objects.filter((o) => o.kind === patch.kind && o.metadata.name === patch.metadata.name && (!ns || (o.metadata.namespace ?? ns) === ns));
  if (target.length !== 1) throw new RenderError(`${where}: the patch's target ${patch.kind} ${patch.metadata.name} matches ${target.length} objects`);
  strategicMerge(target[0] as Json, patch as Json);
}

/** which key identifies an item of a list, per field name (Kubernetes' patchMergeKey) */
function mergeKey(field: string, items: unknown[]): string | undefined {
  if (['containers', 'initContainers', 'volumes', 'env', 'imagePullSecrets'].includes(field)) return 'name';
  if (field === 'volumeMounts') return 'mountPath';
  if (field === 'ports') return items.some((i) => isObj(i) && 'containerPort' in i) ? 'containerPort' : 'port';
  return undefined;
}

/** Strategic merge for the fields we patch: maps merge, keyed lists merge by key, other lists are replaced, null deletes. */
export function strategicMerge(target: Json, patch: Json): void {
  for (const [key, pv] of Object.entries(patch)) {
    const tv = target[key];
    if (pv === null) { delete target[key]; continue; }
    if (isObj(pv) && isObj(tv)) { strategicMerge(tv, pv); continue; }
    if (Array.isArray(pv) && Array.isArray(tv)) {
      const mk = mergeKey(key, [...tv, ...pv]);
      if (mk) {
        for (const item of pv) {
          const hit = isObj(item) ? tv.find((t) => isObj(t) && t[mk] === item[mk]) : undefined;
          if (hit && isObj(item)) strategicMerge(hit as Json, item);
          else tv.push(structuredClone(item));
        }
        continue;
      }
    }
    target[key] = structuredClone(pv);
  }
}

function addLabels(objects: K8sObject[], labels: Record<string, string>): void {
  for (const o of objects) {
    o.metadata.labels = { ...o.metadata.labels, ...labels };
    const spec = o.spec as Json | undefined;
    if (!isObj(spec)) continue;
    if (WORKLOADS.has(o.kind)) {
      if (isObj(spec.selector)) spec.selector.matchLabels = { ...(spec.selector.matchLabels as Json | undefined), ...labels };
      const tpl = spec.template as Json | undefined;
      if (isObj(tpl)) {
        const md = (tpl.metadata ??= {}) as Json;
        md.labels = { ...(md.labels as Json | undefined), ...labels };
      }
    }
    if (o.kind === 'Service' && isObj(spec.selector)) spec.selector = { ...spec.selector, ...labels };
  }
}

/** every pod spec inside an object (workloads, CronJob, bare Pod) */
export function podSpecs(o: K8sObject): Json[] {
  const spec = o.spec as Json | undefined;
  if (!isObj(spec)) return [];
  if (o.kind === 'Pod') return [spec];
  if (o.kind === 'CronJob') {
    const t = ((spec.jobTemplate as Json | undefined)?.spec as Json | undefined)?.template as Json | undefined;
    return isObj(t?.spec) ? [t.spec as Json] : [];
  }
  if (WORKLOADS.has(o.kind) && isObj(spec.template) && isObj(spec.template.spec)) return [spec.template.spec];
  return [];
}

export function containersOf(pod: Json): { c: Json; init: boolean }[] {
  const list = (v: unknown): Json[] => (Array.isArray(v) ? v.filter(isObj) : []);
  return [...list(pod.initContainers).map((c) => ({ c, init: true })), ...list(pod.containers).map((c) => ({ c, init: false }))];
}

/** splits `registry:5000/a/b:tag@sha256:…` into name, tag, digest */
export function parseImage(image: string): { name: string; tag?: string; digest?: string } {
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) { digest = rest.slice(at + 1); rest = rest.slice(0, at); }
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  const out: { name: string; tag?: string; digest?: string } = { name: rest };
  if (colon > slash) { out.name = rest.slice(0, colon); out.tag = rest.slice(colon + 1); }
  if (digest) out.digest = digest;
  return out;
}

function setImages(objects: K8sObject[], images: unknown[], where: string): void {
  for (const img of images) {
    if (!isObj(img) || typeof img.name !== 'string') throw new RenderError(`${where}: each images entry needs a name`);
    for (const o of objects) {
      for (const pod of podSpecs(o)) {
        for (const { c } of containersOf(pod)) {
          if (typeof c.image !== 'string') continue;
          const cur = parseImage(c.image);
          if (cur.name !== img.name) continue;
          const name = typeof img.newName === 'string' ? img.newName : cur.name;
          if (typeof img.digest === 'string') c.image = `${name}@${img.digest}`;
          else {
            const tag = typeof img.newTag === 'string' ? img.newTag : cur.tag;
            c.image = `${name}${tag ? `:${tag}` : ''}${cur.digest ? `@${cur.digest}` : ''}`;
          }
        }
      }
    }
  }
}

export function describe(o: K8sObject): string {
  return `${o.apiVersion} ${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
}

