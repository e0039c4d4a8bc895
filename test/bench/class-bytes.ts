// Where the bytes of a package's lowest rendition go, per shot class, and how far each class's
// measured quality sits above its floor (verify's own checks in report.json): the headroom a
// rate model can spend. Usage: tsx test/bench/class-bytes.ts PKG_DIR [PKG_DIR …] (prints JSON
// lines, then a Markdown table).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../daemon/media/run.js';
import type { Plan } from '../../daemon/optimize/plan.js';
import type { VerifyReport } from '../../daemon/optimize/verify.js';

interface ClassRow {
  cls: string; seconds: number; bytes: number; share: number; kbps: number;
  settings: string; checks: number; min: number | undefined; mean: number | undefined; floor: number | undefined;
}

async function packets(file: string): Promise<Array<{ t: number; size: number }>> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,size', '-of', 'csv=p=0', file]);
  return stdout.trim().split('\n').filter(Boolean).map((l) => {
    const [t, size] = l.split(',');
    return { t: Number(t), size: Number(size) };
  });
}

export async function classBytes(pkg: string): Promise<ClassRow[]> {
  const plan = JSON.parse(readFileSync(join(pkg, 'plan.json'), 'utf8')) as Plan;
  const report = JSON.parse(readFileSync(join(pkg, 'report.json'), 'utf8')) as { verify?: VerifyReport };
  const low = plan.renditions[0]!;
  const pk = await packets(join(pkg, low.id, 'index.m3u8'));
  const total = pk.reduce((s, p) => s + p.size, 0);
  const by = new Map<string, { seconds: number; bytes: number; settings: Set<string> }>();
  plan.shots.forEach((s, i) => {
    const c = by.get(s.cls) ?? { seconds: 0, bytes: 0, settings: new Set<string>() };
    c.seconds += s.end - s.start;
    c.bytes += pk.filter((p) => p.t >= s.start - 1e-3 && p.t < s.end - 1e-3).reduce((n, p) => n + p.size, 0);
    c.settings.add(`${low.shots[i]!.fps}fps/QP${low.shots[i]!.qp}`);
    by.set(s.cls, c);
  });
  const checks = report.verify?.checks ?? [];
  return [...by.entries()].map(([cls, c]) => {
    const mine = checks.filter((k) => k.cls === cls);
    const w = mine.reduce((s, k) => s + k.weight, 0);
    return {
      cls, seconds: Math.round(c.seconds * 10) / 10, bytes: c.bytes, share: c.bytes / total, kbps: (8 * c.bytes) / Math.max(0.1, c.seconds) / 1000,
      settings: [...c.settings].join(' '), checks: mine.length,
      min: mine.length ? Math.min(...mine.map((k) => k.value)) : undefined,
      mean: w > 0 ? mine.reduce((s, k) => s + k.value * k.weight, 0) / w : undefined,
      floor: mine.length ? Math.min(...mine.map((k) => k.floor)) : undefined,
    };
  }).sort((a, b) => b.bytes - a.bytes);
}

const f = (x: number | undefined, d = 3): string => (x === undefined ? '–' : x.toFixed(d));
const table: string[] = ['| package | class | seconds | video bytes (share) | kb/s | settings (lowest) | checks | min | mean | floor |', '|---|---|---|---|---|---|---|---|---|---|'];
for (const pkg of process.argv.slice(2)) {
  const rows = await classBytes(pkg);
  console.log(JSON.stringify({ pkg, rows }));
  for (const r of rows) {
    table.push(`| ${pkg.split('/').slice(-3).join('/')} | ${r.cls} | ${r.seconds} | ${r.bytes} (${(100 * r.share).toFixed(0)}%) | ${r.kbps.toFixed(1)} | ${r.settings} | ${r.checks} | ${f(r.min)} | ${f(r.mean)} | ${f(r.floor, 2)} |`);
  }
}
console.log(table.join('\n'));
