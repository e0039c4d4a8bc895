// Renders k3s/overlays/edge to one multi-document YAML on stdout, with the same renderer
// `npm run k8s:check` validates. The bundle ships this output (k3s/edge.yaml) so a box in
// `--mode k3s` needs neither kustomize nor the dev-only `yaml` package.
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { renderKustomization } from '../test/k8s/render.js';

const dir = process.argv[2] ?? fileURLToPath(new URL('../k3s/overlays/edge', import.meta.url));
const objects = await renderKustomization(dir);
process.stdout.write(objects.map((o) => stringify(o)).join('---\n'));
