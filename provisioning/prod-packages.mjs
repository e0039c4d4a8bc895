// Prints the node_modules folders an installed box needs, one per line: every top-level package
// of package-lock.json that is not dev-only. Nested node_modules travel inside their parent, so
// only the top level is listed. Used by bundle.sh to copy a production tree without `npm ci
// --omit=dev`, which would need the registry and rebuild better-sqlite3 (~85 s).
import { readFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync(process.argv[2] ?? 'package-lock.json', 'utf8'));
for (const [path, meta] of Object.entries(lock.packages ?? {})) {
  if (!path.startsWith('node_modules/')) continue;
  const rest = path.slice('node_modules/'.length);
  if (rest.includes('/node_modules/')) continue;
  // devOptional: dev, but also an optional part of a production package; keep it when present
  if (meta.dev === true) continue;
  process.stdout.write(`${path}\n`);
}
