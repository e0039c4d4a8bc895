import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isObj, type K8sObject } from './render.js';

/**
 * Schema validation against the Kubernetes 1.31 OpenAPI models (kubernetes-models) and the KEDA
 * CRDs (@kubernetes-models/keda): their validate() checks types, enums and required fields.
 * It lets unknown fields through (the OpenAPI has no additionalProperties: false), while the
 * API server in strict mode refuses them and in the default mode silently DROPS them — a
 * misspelt `readOnlyRootFileSystem` would vanish without a word. So a second pass walks the
 * object along the models' own type declarations (.d.ts) and refuses any field they lack.
 */
const require = createRequire(import.meta.url);

interface Model { validate(): void }
type ModelClass = new (data: unknown) => Model;

/** the module that holds a kind's model, or undefined when no package covers it */
function modelModule(apiVersion: string, kind: string): string | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') as [string, string] : ['', apiVersion];
  if (group === 'keda.sh') return `@kubernetes-models/keda/keda.sh/${version}/${kind}`;
  if (group === '') return `kubernetes-models/${version}/${kind}`;
  if (group.includes('.') && !group.endsWith('.k8s.io')) return undefined; // a third-party CRD
  return `kubernetes-models/${group}/${version}/${kind}`;
}

export function hasModel(o: K8sObject): boolean {
  const m = modelModule(o.apiVersion, o.kind);
  if (!m) return false;
  try { require.resolve(m); return true; } catch { return false; }
}

/** Returns the problems found (empty = valid). */
export function validateObject(o: K8sObject): string[] {
  const mod = modelModule(o.apiVersion, o.kind);
  if (!mod) return [`no schema for ${o.apiVersion} ${o.kind}`];
  let cls: ModelClass;
  let file: string;
  try {
    cls = (require(mod) as Record<string, ModelClass>)[o.kind]!;
    file = require.resolve(mod).replace(/\.js$/, '.d.ts');
  } catch {
    return [`no schema for ${o.apiVersion} ${o.kind} (not a Kubernetes 1.31 or KEDA kind)`];
  }
  const problems: string[] = [];
  try { new cls(structuredClone(o)).validate(); } catch (err) { problems.push(`schema: ${(err as Error).message}`); }
  const root = interfaceOf(file, `I${o.kind}`);
  if (root) unknownFields(o, root, '', problems);
  return problems;
}

// ---- a reader of the models' .d.ts: enough TypeScript to know which fields each type has ----

type TypeNode =
  | { t: 'object'; props: Map<string, TypeNode | (() => TypeNode | undefined)> }
  | { t: 'array'; of: TypeNode | undefined }
  | { t: 'map'; of: TypeNode | undefined }
  | { t: 'leaf' };

const fileCache = new Map<string, { text: string; imports: Map<string, string> }>();
const ifaceCache = new Map<string, TypeNode | undefined>();

function readDts(file: string): { text: string; imports: Map<string, string> } {
  let hit = fileCache.get(file);
  if (hit) return hit;
  const raw = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  const imports = new Map<string, string>();
  for (const m of raw.matchAll(/import \{ ([^}]+) \} from "([^"]+)";/g)) {
    for (const name of m[1]!.split(',').map((s) => s.trim())) {
      const [orig, alias] = name.split(/\s+as\s+/);
      imports.set((alias ?? orig)!, resolveDts(file, m[2]!));
    }
  }
  hit = { text: raw, imports };
  fileCache.set(file, hit);
  return hit;
}

function resolveDts(from: string, spec: string): string {
  if (spec.startsWith('.')) return join(dirname(from), `${spec}.d.ts`);
  const parts = spec.split('/');
  const pkg = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  const rest = parts.slice(pkg.split('/').length).join('/');
  return join(dirname(require.resolve(pkg)), `${rest}.d.ts`);
}

/** the body of `export interface NAME ... {` in file, parsed */
function interfaceOf(file: string, name: string): TypeNode | undefined {
  const key = `${file}#${name}`;
  if (ifaceCache.has(key)) return ifaceCache.get(key);
  ifaceCache.set(key, undefined); // recursion guard (JSONSchemaProps refers to itself)
  let node: TypeNode | undefined;
  try {
    const { text } = readDts(file);
    const start = text.search(new RegExp(`export interface ${name}\\b[^{]*\\{`));
    if (start >= 0) {
      const open = text.indexOf('{', start);
      node = parseType(text.slice(open, matchBrace(text, open) + 1), file);
    }
  } catch { node = undefined; }
  ifaceCache.set(key, node);
  return node;
}

function matchBrace(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '{' || s[i] === '<' || s[i] === '(') depth++;
    else if (s[i] === '}' || s[i] === '>' || s[i] === ')') { depth--; if (depth === 0) return i; }
  }
  return s.length - 1;
}

function parseType(src: string, file: string): TypeNode | undefined {
  const s = src.trim();
  if (s.startsWith('Array<') && matchBrace(s, 5) === s.length - 1) return { t: 'array', of: parseType(s.slice(6, -1), file) };
  if (s.startsWith('{') && matchBrace(s, 0) === s.length - 1) {
    const body = s.slice(1, -1).trim();
    const idx = /^\[key: string\]:\s*([\s\S]*?);?$/.exec(body);
    if (idx) return { t: 'map', of: parseType(idx[1]!, file) };
    const props: Map<string, TypeNode | (() => TypeNode | undefined)> = new Map();
    let i = 0;
    while (i < body.length) {
      const m = /"([^"]+)"\??:\s*/y;
      m.lastIndex = i;
      const hit = m.exec(body);
      if (!hit) { i++; continue; }
      let j = m.lastIndex;
      const from = j;
      let depth = 0;
      for (; j < body.length; j++) {
        const ch = body[j];
        if (ch === '{' || ch === '<' || ch === '(') depth++;
        else if (ch === '}' || ch === '>' || ch === ')') depth--;
        else if (ch === ';' && depth === 0) break;
      }
      const typeSrc = body.slice(from, j);
      props.set(hit[1]!, () => parseType(typeSrc, file));
      i = j + 1;
    }
    return { t: 'object', props };
  }
  if (/^[A-Za-z_]\w*$/.test(s)) {
    const target = readDts(file).imports.get(s);
    if (!target) return { t: 'leaf' };
    const { text } = readDts(target);
    const iface = /export interface (\w+)\b[^{]*\{/.exec(text);
    return iface ? interfaceOf(target, iface[1]!) : { t: 'leaf' };
  }
  return { t: 'leaf' };
}

function unknownFields(v: unknown, node: TypeNode, path: string, out: string[]): void {
  if (node.t === 'array' && Array.isArray(v) && node.of) v.forEach((item, i) => unknownFields(item, node.of!, `${path}[${i}]`, out));
  else if (node.t === 'map' && isObj(v) && node.of) for (const [k, item] of Object.entries(v)) unknownFields(item, node.of, `${path}.${k}`, out);
  else if (node.t === 'object' && isObj(v)) {
    for (const [k, item] of Object.entries(v)) {
      const sub = node.props.get(k);
      if (sub === undefined) { out.push(`unknown field ${path ? `${path}.` : ''}${k}`); continue; }
      const resolved = typeof sub === 'function' ? sub() : sub;
      if (typeof sub === 'function' && resolved) node.props.set(k, resolved);
      if (resolved) unknownFields(item, resolved, path ? `${path}.${k}` : k, out);
    }
  }
}
