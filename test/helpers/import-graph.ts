import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The static import graph of a source tree, read from the text (no compiler): enough to keep
 * the layering rules of issue 12 (one module runs child processes, no import circles).
 * Type-only imports are left out: TypeScript erases them, so they cannot form a circle at run time.
 */
export interface Edge { from: string; to: string; dynamic: boolean }

export function sourceFiles(root: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const p = join(root, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|mts)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

/** Comments removed (a doc comment may show an import as an example); strings are kept. */
export function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/(^|[^:'"`\\])\/\/[^\n]*/g, '$1');
}

const STATIC = /(?:^|[;\n])\s*(import|export)\s+(type\s+)?(?:[\w*\s{},$]*?\s*from\s*)?['"]([^'"]+)['"]/g;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Module specifiers a file imports: `{ spec, dynamic, typeOnly }`. */
export function specifiers(src: string): Array<{ spec: string; dynamic: boolean; typeOnly: boolean }> {
  const text = stripComments(src);
  const out: Array<{ spec: string; dynamic: boolean; typeOnly: boolean }> = [];
  for (const m of text.matchAll(STATIC)) out.push({ spec: m[3]!, dynamic: false, typeOnly: Boolean(m[2]) });
  for (const m of text.matchAll(DYNAMIC)) out.push({ spec: m[1]!, dynamic: true, typeOnly: false });
  return out;
}

function resolveLocal(fromFile: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = resolve(dirname(fromFile), spec);
  for (const c of [base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base, `${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(c) && /\.(ts|mts)$/.test(c)) return c;
  }
  return undefined;
}

/** Edges between files under `root`, paths relative to `root`. */
export function importGraph(root: string): Edge[] {
  const edges: Edge[] = [];
  for (const f of sourceFiles(root)) {
    for (const s of specifiers(readFileSync(f, 'utf8'))) {
      if (s.typeOnly) continue;
      const to = resolveLocal(f, s.spec);
      if (to) edges.push({ from: relative(root, f), to: relative(root, to), dynamic: s.dynamic });
    }
  }
  return edges;
}

/** Strongly connected groups of two or more files (or a file importing itself): each is a circle. */
export function cycles(edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
    if (!next.has(e.to)) next.set(e.to, []);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const found: string[][] = [];
  let n = 0;
  const visit = (v: string): void => {
    index.set(v, n); low.set(v, n); n++;
    stack.push(v); on.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); group.push(w); } while (w !== v);
      if (group.length > 1 || next.get(v)!.includes(v)) found.push(group.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** A circle as text, naming its edges and which of them are dynamic imports. */
export function describeCycle(group: readonly string[], edges: readonly Edge[]): string {
  const inside = new Set(group);
  return edges.filter((e) => inside.has(e.from) && inside.has(e.to))
    .map((e) => `${e.from} -> ${e.to}${e.dynamic ? ' (dynamic import)' : ''}`).join('; ');
}

/** Files that import node:child_process in any form (static, dynamic, require). */
export function childProcessImporters(root: string): string[] {
  return sourceFiles(root).filter((f) => {
    const text = stripComments(readFileSync(f, 'utf8'));
    return specifiers(text).some((s) => /^(node:)?child_process$/.test(s.spec)) ||
      /\brequire\(\s*['"](node:)?child_process['"]\s*\)/.test(text);
  }).map((f) => relative(root, f));
}
