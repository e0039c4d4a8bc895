import { imageRule, type Problem } from './policy.js';

/**
 * Static checks of the Containerfile (no container engine exists on a developer's machine or
 * in CI, so it is read, not built): pinned bases, a non-root final user, no pipe-to-shell
 * installs, the packages the program runs, and no HEALTHCHECK (Kubernetes probes instead).
 */
interface Instr { op: string; args: string; line: number }

/** instructions with line continuations joined and comments dropped */
export function parseContainerfile(text: string): Instr[] {
  const out: Instr[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let l = lines[i]!;
    if (/^\s*(#|$)/.test(l)) continue;
    while (/\\\s*$/.test(l) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue; // Docker drops comment lines inside a continuation
      l = l.replace(/\\\s*$/, ' ') + next;
    }
    const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(l);
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  return out;
}

const REQUIRED_PACKAGES = ['ffmpeg', 'tesseract-ocr', 'tesseract-ocr-spa', 'tesseract-ocr-eng', 'espeak-ng'];

export function checkContainerfile(text: string): Problem[] {
  const out: Problem[] = [];
  const add = (rule: string, message: string): void => { out.push({ rule, message }); };
  const instrs = parseContainerfile(text);
  const args = new Map<string, string>();
  const stages: Instr[][] = [];
  for (const ins of instrs) {
    if (ins.op === 'ARG' && stages.length === 0) {
      const [k, v] = ins.args.split('=');
      if (k && v !== undefined) args.set(k.trim(), v.trim());
    }
    if (ins.op === 'FROM') stages.push([]);
    stages[stages.length - 1]?.push(ins);
  }
  if (stages.length < 2) add('multi-stage', 'one stage only: the compilers would ship in the image');
  const stageNames = new Set<string>();
  for (const st of stages) {
    const from = st[0]!;
    const m = /^(?:--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(from.args);
    if (!m) { add('base-pinned', `line ${from.line}: cannot read FROM ${from.args}`); continue; }
    if (m[1] && !/^\$\{?BUILDPLATFORM\}?$/.test(m[1])) add('multi-arch', `line ${from.line}: FROM is pinned to --platform=${m[1]}`);
    const image = m[2]!.replace(/^\$\{?(\w+)\}?$/, (_, k: string) => args.get(k) ?? `$${k}`);
    if (!stageNames.has(image)) {
      const bad = image.startsWith('$') ? `${image} has no default` : imageRule(image);
      if (bad) add('base-pinned', `line ${from.line}: ${bad}`);
      else if (!/^node:20\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?$/.test(image)) add('base-pinned', `line ${from.line}: base ${image} is not a pinned node:20.x.y-bookworm-slim`);
    }
    if (m[3]) stageNames.add(m[3]);
  }
  const final = stages[stages.length - 1] ?? [];
  const user = [...final].reverse().find((i) => i.op === 'USER');
  if (!user) add('non-root-user', 'the final stage sets no USER (it would run as root)');
  else if (/^(root|0)(:|$)/.test(user.args)) add('non-root-user', `line ${user.line}: USER ${user.args} is root`);
  else if (!/^\d+(:\d+)?$/.test(user.args)) add('non-root-user', `line ${user.line}: USER ${user.args} is not numeric (runAsNonRoot cannot verify a name)`);
  for (const ins of instrs) {
    if (ins.op === 'HEALTHCHECK') add('no-healthcheck', `line ${ins.line}: HEALTHCHECK (Kubernetes probes /health instead)`);
    if (ins.op === 'RUN' && /\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|da|z)?sh\b/.test(ins.args)) add('no-pipe-to-shell', `line ${ins.line}: downloads a script into a shell`);
    if (ins.op === 'ADD' && /https?:\/\//.test(ins.args)) add('no-pipe-to-shell', `line ${ins.line}: ADD from a URL (unpinned, unchecked download)`);
  }
  const runtimeApt = final.filter((i) => i.op === 'RUN').map((i) => i.args).join(' ');
  for (const p of REQUIRED_PACKAGES) {
    if (!new RegExp(`apt-get install[^&;]*\\s${p.replace(/[-]/g, '\\-')}(\\s|$)`).test(runtimeApt)) add('runtime-packages', `the final stage does not apt-get install ${p}`);
  }
  const npmCi = instrs.find((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
  if (!npmCi) add('npm-ci', 'no `npm ci` (the lock file must decide every version)');
  else {
    const skip = instrs.some((i) => i.line < npmCi.line && (i.op === 'ENV' || i.op === 'ARG') && /ONNXRUNTIME_NODE_INSTALL=skip/.test(i.args))
      || /ONNXRUNTIME_NODE_INSTALL=skip\s+npm ci/.test(npmCi.args);
    if (!skip) add('npm-ci', 'npm ci runs without ONNXRUNTIME_NODE_INSTALL=skip (its install script downloads from outside npm)');
  }
  return out;
}
