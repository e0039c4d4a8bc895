import { containersOf, isObj, parseImage, podSpecs, type K8sObject } from './render.js';

/**
 * The rules every container of Yachay keeps (issue 11 §3), checked on the rendered objects:
 * what the Pod Security "restricted" profile asks, plus pinned images, resources and probes.
 * Each problem names its rule so a failure says what to fix.
 */
export interface Problem { rule: string; message: string }

type Json = Record<string, unknown>;

const get = (o: unknown, ...path: string[]): unknown => path.reduce<unknown>((v, k) => (isObj(v) ? v[k] : undefined), o);

export function imageRule(image: unknown): string | undefined {
  if (typeof image !== 'string' || !image) return 'no image';
  const { tag, digest } = parseImage(image);
  if (digest) return /^sha256:[0-9a-f]{64}$/.test(digest) ? undefined : `bad digest in ${image}`;
  if (!tag) return `${image} has no tag (that means latest)`;
  if (tag === 'latest' || /^(stable|main|master|edge|nightly)$/.test(tag)) return `${image} uses a moving tag`;
  return undefined;
}

export function checkPolicies(o: K8sObject): Problem[] {
  const out: Problem[] = [];
  const add = (rule: string, message: string): void => { out.push({ rule, message }); };
  for (const pod of podSpecs(o)) {
    const psc = (pod.securityContext ?? {}) as Json;
    for (const flag of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
      if (pod[flag] === true) add('host-namespaces', `${flag} is on`);
    }
    for (const v of (Array.isArray(pod.volumes) ? pod.volumes : []) as Json[]) {
      if (isObj(v.hostPath)) add('no-hostpath', `volume ${String(v.name)} mounts a host path`);
    }
    const volumeNames = new Set(((Array.isArray(pod.volumes) ? pod.volumes : []) as Json[]).map((v) => v.name));
    for (const t of (get(o, 'spec', 'volumeClaimTemplates') ?? []) as Json[]) volumeNames.add(get(t, 'metadata', 'name'));
    if (psc.runAsUser === 0) add('run-as-non-root', 'pod runAsUser is 0');
    for (const { c, init } of containersOf(pod)) {
      const who = `container ${String(c.name)}`;
      const sc = (c.securityContext ?? {}) as Json;
      const bad = imageRule(c.image);
      if (bad) add('image-pinned', `${who}: ${bad}`);
      for (const kind of ['requests', 'limits'] as const) {
        for (const res of ['cpu', 'memory'] as const) {
          if (get(c, 'resources', kind, res) === undefined) add('resources', `${who}: no resources.${kind}.${res}`);
        }
      }
      if (!init) {
        for (const p of ['livenessProbe', 'readinessProbe'] as const) if (!isObj(c[p])) add('probes', `${who}: no ${p}`);
      }
      const ports = new Set(((Array.isArray(c.ports) ? c.ports : []) as Json[]).map((p) => p.name));
      for (const p of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) {
        const port = get(c, p, 'httpGet', 'port') ?? get(c, p, 'tcpSocket', 'port');
        if (typeof port === 'string' && !ports.has(port)) add('probes', `${who}: ${p} uses port "${port}", which the container does not name`);
      }
      if ((sc.runAsNonRoot ?? psc.runAsNonRoot) !== true) add('run-as-non-root', `${who}: runAsNonRoot is not true`);
      if ((sc.runAsUser ?? psc.runAsUser) === 0) add('run-as-non-root', `${who}: runAsUser is 0`);
      if (sc.readOnlyRootFilesystem !== true) add('read-only-root', `${who}: readOnlyRootFilesystem is not true`);
      if (sc.allowPrivilegeEscalation !== false) add('no-privilege-escalation', `${who}: allowPrivilegeEscalation is not false`);
      if (sc.privileged === true) add('not-privileged', `${who}: privileged`);
      const caps = (sc.capabilities ?? {}) as Json;
      if (!Array.isArray(caps.drop) || !caps.drop.includes('ALL')) add('capabilities', `${who}: capabilities.drop lacks ALL`);
      if (Array.isArray(caps.add) && caps.add.length) add('capabilities', `${who}: adds ${caps.add.join(', ')}`);
      const seccomp = get(sc, 'seccompProfile', 'type') ?? get(psc, 'seccompProfile', 'type');
      if (seccomp !== 'RuntimeDefault') add('seccomp', `${who}: seccompProfile is ${String(seccomp ?? 'unset')}, not RuntimeDefault`);
      for (const m of (Array.isArray(c.volumeMounts) ? c.volumeMounts : []) as Json[]) {
        if (!volumeNames.has(m.name)) add('references', `${who}: mounts volume ${String(m.name)}, which the pod does not define`);
      }
    }
  }
  return out;
}

/**
 * hostPort only where the bundle needs it (the school box's LAN ports), and a namespace's
 * Pod Security level to match: "restricted" enforced, or, where hostPorts exist (which Pod
 * Security forbids), at least warned and audited.
 */
export function checkHostAccess(o: K8sObject, allowHostPorts: boolean): Problem[] {
  const out: Problem[] = [];
  if (!allowHostPorts) {
    for (const pod of podSpecs(o)) {
      for (const { c } of containersOf(pod)) {
        for (const p of (Array.isArray(c.ports) ? c.ports : []) as Json[]) {
          if (p.hostPort) out.push({ rule: 'host-ports', message: `container ${String(c.name)}: hostPort ${String(p.hostPort)} (only the edge bundle may bind the node's ports)` });
        }
      }
    }
  }
  if (o.kind === 'Namespace') {
    const labels = o.metadata.labels ?? {};
    const level = (mode: string): string | undefined => labels[`pod-security.kubernetes.io/${mode}`];
    const ok = level('enforce') === 'restricted' || (allowHostPorts && level('warn') === 'restricted' && level('audit') === 'restricted');
    if (!ok) out.push({ rule: 'pod-security', message: allowHostPorts ? 'needs pod-security enforce=restricted, or warn and audit=restricted' : 'needs pod-security.kubernetes.io/enforce: restricted' });
  }
  return out;
}

/** bytes in a Kubernetes quantity (memory: Ki/Mi/Gi/Ti, k/M/G/T, plain) */
export function quantityBytes(q: unknown): number {
  const m = /^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  if (!m) return NaN;
  const mult: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? mult[m[2]]! : 1);
}

/** the sum of memory limits of every pod the bundle runs (at its stated replicas) */
export function memoryLimitTotal(objects: K8sObject[]): number {
  let total = 0;
  for (const o of objects) {
    const replicas = typeof get(o, 'spec', 'replicas') === 'number' ? get(o, 'spec', 'replicas') as number : 1;
    for (const pod of podSpecs(o)) {
      for (const { c, init } of containersOf(pod)) if (!init) total += replicas * quantityBytes(get(c, 'resources', 'limits', 'memory'));
    }
  }
  return total;
}

/**
 * Rules across objects: what one object names must exist in the render (a Service's selector,
 * a PVC, a ConfigMap, a KEDA target, an Ingress backend), and a namespace that runs pods with
 * NetworkPolicies must start from default deny.
 */
export function checkReferences(objects: K8sObject[], opts: { requireDefaultDeny: boolean }): Map<K8sObject, Problem[]> {
  const out = new Map<K8sObject, Problem[]>();
  const add = (o: K8sObject, rule: string, message: string): void => { out.set(o, [...(out.get(o) ?? []), { rule, message }]); };
  const ns = (o: K8sObject): string => o.metadata.namespace ?? '';
  const find = (kind: string, name: unknown, inNs: string): K8sObject | undefined =>
    objects.find((x) => x.kind === kind && x.metadata.name === name && ns(x) === inNs);
  const podLabels = (inNs: string): Json[] => objects.filter((x) => ns(x) === inNs && podSpecs(x).length)
    .map((x) => (get(x, 'spec', 'template', 'metadata', 'labels') ?? {}) as Json);
  const selects = (sel: unknown, inNs: string): boolean => isObj(sel) && podLabels(inNs).some((l) => Object.entries(sel).every(([k, v]) => l[k] === v));

  for (const o of objects) {
    const n = ns(o);
    if (o.kind === 'Service' && !selects(get(o, 'spec', 'selector'), n)) add(o, 'references', 'its selector matches no pod template');
    if (o.kind === 'PodDisruptionBudget' && !selects(get(o, 'spec', 'selector', 'matchLabels'), n)) add(o, 'references', 'its selector matches no pod template');
    if (o.kind === 'ScaledObject') {
      const ref = get(o, 'spec', 'scaleTargetRef') as Json | undefined;
      if (!find(String(ref?.kind ?? 'Deployment'), ref?.name, n)) add(o, 'references', `scaleTargetRef ${String(ref?.name)} is not in the render`);
      for (const t of (get(o, 'spec', 'triggers') ?? []) as Json[]) {
        const auth = get(t, 'authenticationRef', 'name');
        if (auth && !find('TriggerAuthentication', auth, n)) add(o, 'references', `authenticationRef ${String(auth)} is not in the render`);
      }
    }
    if (o.kind === 'Ingress') {
      for (const rule of (get(o, 'spec', 'rules') ?? []) as Json[]) {
        for (const p of (get(rule, 'http', 'paths') ?? []) as Json[]) {
          const svc = get(p, 'backend', 'service') as Json | undefined;
          const target = find('Service', svc?.name, n);
          if (!target) { add(o, 'references', `backend service ${String(svc?.name)} is not in the render`); continue; }
          const portName = get(svc, 'port', 'name');
          if (portName && !((get(target, 'spec', 'ports') ?? []) as Json[]).some((sp) => sp.name === portName)) add(o, 'references', `service ${String(svc?.name)} has no port ${String(portName)}`);
        }
      }
    }
    for (const pod of podSpecs(o)) {
      const vcts = ((get(o, 'spec', 'volumeClaimTemplates') ?? []) as Json[]).map((t) => get(t, 'metadata', 'name'));
      for (const v of (Array.isArray(pod.volumes) ? pod.volumes : []) as Json[]) {
        const claim = get(v, 'persistentVolumeClaim', 'claimName');
        if (claim && !find('PersistentVolumeClaim', claim, n) && !vcts.includes(claim)) add(o, 'references', `volume ${String(v.name)}: claim ${String(claim)} is not in the render`);
        const cm = get(v, 'configMap', 'name');
        if (cm && !find('ConfigMap', cm, n)) add(o, 'references', `volume ${String(v.name)}: ConfigMap ${String(cm)} is not in the render`);
      }
    }
  }
  if (opts.requireDefaultDeny) {
    for (const n of new Set(objects.filter((o) => podSpecs(o).length).map(ns))) {
      const deny = objects.some((o) => o.kind === 'NetworkPolicy' && ns(o) === n && isObj(get(o, 'spec', 'podSelector'))
        && Object.keys(get(o, 'spec', 'podSelector') as Json).length === 0 && !get(o, 'spec', 'ingress') && !get(o, 'spec', 'egress')
        && ['Ingress', 'Egress'].every((t) => ((get(o, 'spec', 'policyTypes') ?? []) as string[]).includes(t)));
      if (!deny) {
        const first = objects.find((o) => ns(o) === n && podSpecs(o).length)!;
        add(first, 'network-default-deny', `namespace ${n} has no default-deny NetworkPolicy (podSelector {}, Ingress and Egress, no rules)`);
      }
    }
  }
  return out;
}
