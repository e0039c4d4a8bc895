// Writes the box's /etc/yachay/config.json for provision.sh: keeps what is already there (a
// technician's own edits survive a second run) and sets only the keys given, then validates the
// result with the daemon's own loader. Writes nothing when the content would not change.
//   node config.mjs FILE key.path=JSON-or-text ...
// Prints "changed PORT" or "unchanged PORT" (the web port the box will use) on stdout; a config the schema refuses exits 78 with the list.
import { readFileSync } from 'node:fs';
import { register } from 'tsx/esm/api';

register();
const { writeFileAtomic } = await import('../daemon/util/atomic.ts');
const { loadConfig } = await import('../daemon/config/load.ts');
const { reportError } = await import('../daemon/errors.ts');

const [file, ...sets] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: config.mjs FILE key.path=value ...\n');
  process.exit(64);
}

let before = '';
let cfg = {};
try {
  before = readFileSync(file, 'utf8');
  cfg = JSON.parse(before);
} catch (err) {
  if (err.code !== 'ENOENT') {
    process.stderr.write(`provision: ${file} is not valid JSON (${err.message}); fix or remove it and run again\n`);
    process.exit(78);
  }
}

for (const arg of sets) {
  const eq = arg.indexOf('=');
  const path = arg.slice(0, eq).split('.');
  const raw = arg.slice(eq + 1);
  // ports and flags arrive as text; the schema wants numbers and booleans
  let value = raw;
  try { value = JSON.parse(raw); } catch { /* plain text */ }
  let node = cfg;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key];
  }
  node[path.at(-1)] = value;
}

const text = `${JSON.stringify(cfg, null, 2)}\n`;
let port;
try {
  // the file alone, as the box will read it: no YACHAY_* from this shell may make it look valid
  port = loadConfig({ env: {}, overrides: JSON.parse(text) }).http.port;
} catch (err) {
  process.stderr.write(`provision: ${file} would not be accepted by the box:\n`);
  process.exit(reportError(err));
}
if (text === before) {
  process.stdout.write(`unchanged ${port}\n`);
} else {
  await writeFileAtomic(file, text, { mode: 0o640 });
  process.stdout.write(`changed ${port}\n`);
}
