import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pageModules } from '../../../daemon/http/player.js';

// The web page's own files (daemon/http/player/): its ES modules type-check, its words exist in
// every language and are never written twice side by side, and the service worker keeps every
// module for offline use.

const ROOT = join(import.meta.dirname, '../../..');
const PAGE = join(ROOT, 'daemon/http/player');
type Lang = 'es' | 'en' | 'qu';
interface Strings {
  LANGS: Lang[];
  STRINGS: Record<Lang, Record<string, string>>;
  STUDENT_QU: Record<string, string>;
  translate(lang: Lang, key: string, params?: Record<string, string | number>): string;
}
// a variable specifier: the catalogue is browser JavaScript, outside the Node project's types
const stringsUrl = pathToFileURL(join(PAGE, 'js/strings.js')).href;
const S = await import(stringsUrl) as Strings;
const html = readFileSync(join(PAGE, 'index.html'), 'utf8');

/** "Docente / Teacher": words, a slash between spaces, words */
const BILINGUAL = /[\p{L}.…)]\s+\/\s+[\p{L}(¿]/u;

t.test('every language has every key, and nothing else', async (t) => {
  const es = Object.keys(S.STRINGS.es).sort();
  t.ok(es.length > 100, `${es.length} keys`);
  for (const lang of S.LANGS) {
    t.same(Object.keys(S.STRINGS[lang]).sort(), es, `${lang} has the same keys as es`);
    for (const [k, v] of Object.entries(S.STRINGS[lang])) {
      if (typeof v !== 'string' || !v.trim()) t.fail(`${lang} ${k} is empty`);
      // the same {placeholders} in every language, or a figure goes missing
      const holes = (s: string): string[] => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!).sort();
      t.same(holes(v), holes(S.STRINGS.es[k]!), `${lang} ${k}: same placeholders`);
    }
  }
  t.equal(S.translate('en', 'list.meta', { saver: '1 MB', audio: '0.2 MB' }), '1 MB data saver · 0.2 MB audio only');
});

t.test('Quechua covers the student pages; the teacher corner falls back to Spanish', async (t) => {
  const student = Object.keys(S.STUDENT_QU);
  t.ok(student.length >= 30, `${student.length} student strings in Quechua`);
  for (const k of student) t.equal(S.STRINGS.qu[k], S.STUDENT_QU[k], `qu ${k} from the Quechua table`);
  t.equal(S.STRINGS.qu['login.button'], S.STRINGS.es['login.button'], 'teacher words in Spanish');
  t.not(S.STRINGS.qu['list.heading'], S.STRINGS.es['list.heading'], 'student words in Quechua');
});

t.test('the README lists every Quechua string for a native speaker\'s review', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const missing = Object.entries(S.STUDENT_QU).filter(([, v]) => !readme.includes(v)).map(([k]) => k);
  t.same(missing, [], 'every Quechua string is in the README');
  t.match(readme, /native speaker/i);
});

t.test('no label is written in two languages side by side', async (t) => {
  for (const lang of S.LANGS) {
    for (const [k, v] of Object.entries(S.STRINGS[lang])) if (BILINGUAL.test(v)) t.fail(`${lang} ${k}: "${v}"`);
  }
  const text = html.replace(/<script[\s\S]*?<\/script>/g, '').replace(/<[^>]+>/g, ' ');
  t.notMatch(text, BILINGUAL, 'index.html text');
  const attrs = [...html.matchAll(/(?:title|placeholder|aria-label)="([^"]*)"/g)].map((m) => m[1]!);
  t.same(attrs.filter((a) => BILINGUAL.test(a)), [], 'index.html attributes');
  // a literal in the modules that a reader sees would bypass the catalogue
  const literal = /(['"`])(?:(?!\1)[^\\]|\\.)*?[\p{L}.…)]\s+\/\s+[\p{L}(](?:(?!\1)[^\\]|\\.)*?\1/u;
  for (const f of readdirSync(join(PAGE, 'js'))) {
    const lines = readFileSync(join(PAGE, 'js', f), 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (/^\s*(\/\/|\*|\/\*)/.test(line)) return;
      if (literal.test(line)) t.fail(`js/${f}:${i + 1} ${line.trim()}`);
    });
  }
  t.notMatch('Lecciones', BILINGUAL);
  t.match('Docente / Teacher', BILINGUAL, 'the pattern finds the old labels');
});

t.test('every data-i18n key in index.html is in the catalogue', async (t) => {
  const keys = [...html.matchAll(/data-i18n(?:-[a-z-]+)?="([^"]+)"/g)].map((m) => m[1]!);
  t.ok(keys.length > 40, `${keys.length} labels`);
  t.same(keys.filter((k) => !(k in S.STRINGS.es)), [], 'no unknown key');
  t.match(html, /<script src="\/js\/main\.js" type="module"><\/script>/, 'the entry module');
  t.notMatch(html, /<script>(?!<)/, 'no inline script (the CSP forbids it)');
});

t.test('the service worker keeps every module the page loads', async (t) => {
  const sw = readFileSync(join(PAGE, 'sw.js'), 'utf8');
  const list = /const SHELL_URLS = \[([\s\S]*?)\];/.exec(sw);
  t.ok(list, 'SHELL_URLS found');
  const urls = [...(list?.[1] ?? '').matchAll(/'([^']+)'/g)].map((m) => m[1]!).sort();
  const modules = pageModules();
  t.ok(modules.includes('/js/main.js') && modules.length >= 10, `${modules.length} modules served`);
  t.same(urls, ['/', '/style.css', '/vendor/hls.js', ...modules].sort(), 'the offline copy = the page');
});

t.test('the page sends no Authorization header: the HttpOnly cookie carries the session', async (t) => {
  for (const url of pageModules()) {
    const src = readFileSync(join(PAGE, url), 'utf8');
    t.notMatch(src, /authorization|Bearer /i, `${url} has no bearer token`);
    t.notMatch(src, /\.token\b/, `${url} reads no session token`);
  }
});

t.test('every module is type-checked with // @ts-check and checkJs', async (t) => {
  for (const url of pageModules()) {
    const src = readFileSync(join(PAGE, url), 'utf8');
    t.ok(src.startsWith('// @ts-check\n'), `${url} starts with // @ts-check`);
  }
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(PAGE, 'tsconfig.json')], { encoding: 'utf8', timeout: 120_000 });
  t.equal(r.status, 0, `tsc -p daemon/http/player\n${r.stdout}${r.stderr}`);
  t.ok(readFileSync(join(PAGE, 'sw.js'), 'utf8').startsWith('// @ts-check\n'), 'sw.js starts with // @ts-check');
  const sw = spawnSync(process.execPath, [tsc, '-p', join(PAGE, 'sw.tsconfig.json')], { encoding: 'utf8', timeout: 120_000 });
  t.equal(sw.status, 0, `tsc -p daemon/http/player/sw.tsconfig.json (worker scope)\n${sw.stdout}${sw.stderr}`);
  const listed = spawnSync(process.execPath, [tsc, '-p', join(PAGE, 'tsconfig.json'), '--listFilesOnly'], { encoding: 'utf8', timeout: 120_000 });
  for (const url of pageModules()) t.match(listed.stdout, join(PAGE, url), `${url} is in the checked program`);
});
