import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childProcessImporters, cycles, describeCycle, importGraph, sourceFiles } from '../helpers/import-graph.js';

// issue 12 item 6: one module runs child processes, and the import graph has no circles
const DAEMON = fileURLToPath(new URL('../../daemon', import.meta.url));
const RUNNER = 'media/run.ts';

t.test('only the runner imports node:child_process', async (t) => {
  t.same(childProcessImporters(DAEMON), [RUNNER], 'every other file starts processes through media/run.ts');
});

t.test('the import graph of daemon/ has no circles, dynamic imports included', async (t) => {
  const edges = importGraph(DAEMON);
  t.ok(edges.length > 300, `${edges.length} imports read (the parser sees the tree)`);
  t.ok(edges.some((e) => e.dynamic), 'dynamic imports are part of the graph');
  const found = cycles(edges);
  t.same(found.map((c) => describeCycle(c, edges)), [], 'no file reaches itself through its imports');
});

t.test('REPO_ROOT is defined once, in paths.ts', async (t) => {
  const defs = sourceFiles(DAEMON).filter((f) => /export const REPO_ROOT\b/.test(readFileSync(f, 'utf8')));
  t.same(defs, [join(DAEMON, 'paths.ts')]);
});

t.test('the checks see what they are meant to see', async (t) => {
  const dir = t.testdir({
    'a.ts': "import { b } from './b.js';\nexport const a = (): number => b;\n",
    // a circle closed by a dynamic import is still a circle
    'b.ts': "export const b = 1;\nexport async function later(): Promise<unknown> { return import('./a.js'); }\n",
    'c.ts': "import type { Later } from './d.js';\nexport type C = Later;\n",
    'd.ts': "import { c } from './e.js';\nexport type Later = number;\nexport const d = c;\n",
    'e.ts': "/* import { x } from './d.js' */\nexport const c = 2;\nimport { execFile as ef } from 'node:child_process';\nexport const f = ef;\n",
    'g.ts': "const cp = await import('child_process');\nexport default cp;\n",
  });
  const edges = importGraph(dir);
  const found = cycles(edges);
  t.same(found, [['a.ts', 'b.ts']], 'the dynamic circle a↔b is found; type-only and commented imports are not edges');
  t.match(describeCycle(found[0]!, edges), /b\.ts -> a\.ts \(dynamic import\)/);
  t.same(childProcessImporters(dir), ['e.ts', 'g.ts']);
});
