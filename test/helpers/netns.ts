import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * Two hosts joined by a satellite-like link, for the sync's fault tests and bench: network
 * namespaces `ych-hub-<rand>` and `ych-box-<rand>`, private 10.x addresses, the link shaped to
 * a VSAT's round trip, loss and rate, and a switch that drops it. Shaping is `tc netem` on a
 * veth pair where the kernel has sch_netem; where it does not (this project's CI kernel), a
 * userspace forwarder between two TUN devices (satlink.py) does the same job packet by packet.
 * Where namespaces are refused, everything runs on loopback, unshaped, and `mode` says so.
 * Teardown always runs: on close(), at process exit and on SIGINT/SIGTERM.
 */

export interface LinkShape {
  /** round trip added by the link, split evenly between the two directions */
  rttMs: number;
  /** random loss in each direction, percent */
  lossPct: number;
  rateKbit: number;
  /** the sender's TCP congestion control in both namespaces (the kernel's default if absent) */
  congestion?: string | undefined;
}

export const SATELLITE: LinkShape = { rttMs: 600, lossPct: 1, rateKbit: 512 };

export interface WireCounters { hubTx: number; hubRx: number; boxTx: number; boxRx: number }

export interface SatLink {
  mode: 'netns' | 'loopback';
  /** how the link is shaped, or why it is not, for test names and bench output */
  describe: string;
  shaper: 'netem' | 'tun-forwarder' | 'none';
  shape: LinkShape;
  hubIp: string;
  boxIp: string;
  /** argv prefix that runs a command inside a side's namespace ([] on loopback) */
  prefix(side: 'hub' | 'box'): string[];
  spawnIn(side: 'hub' | 'box', cmd: string, args: string[], opts?: SpawnOptions): ChildProcess;
  /** link down (every packet lost both ways, what was in flight too) */
  down(): Promise<void>;
  up(): Promise<void>;
  /** down for `ms`, then up again */
  drop(ms: number): Promise<void>;
  /** bytes that crossed each end's interface (IP packets; Ethernet header too on veth) */
  counters(): Promise<WireCounters>;
  /**
   * Bytes the link itself carried each way (took its time, whether delivered or lost on the
   * way), from the TUN link's own count; undefined under netem (use counters()).
   */
  carried(): Promise<{ hubToBox: number; boxToHub: number } | undefined>;
  close(): Promise<void>;
}

const live = new Set<() => void>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  const all = (): void => { for (const f of [...live]) { try { f(); } catch { /* keep tearing down */ } } };
  process.on('exit', all);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { all(); process.kill(process.pid, sig); });
  }
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function errText(err: unknown): string {
  const e = err as { stderr?: string | Buffer; message?: string };
  return String(e.stderr || e.message || err).trim().split('\n')[0]!;
}

/** Can this machine make network namespaces? (the reason when it cannot) */
export function netnsAvailable(): { ok: boolean; why?: string } {
  const name = `ych-probe-${randomBytes(3).toString('hex')}`;
  try {
    ip(['netns', 'add', name]);
  } catch (err) {
    return { ok: false, why: `ip netns add refused (${errText(err)})` };
  }
  try { ip(['netns', 'del', name]); } catch { /* gone already */ }
  return { ok: true };
}

function killTree(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(-child.pid, 'SIGKILL'); } catch { try { child.kill('SIGKILL'); } catch { /* gone */ } }
}

function readCounters(ns: string | undefined, dev: string): { tx: number; rx: number } {
  const j = JSON.parse(ip([...(ns ? ['-n', ns] : []), '-s', '-j', 'link', 'show', 'dev', dev])) as Array<{ stats64: { rx: { bytes: number }; tx: { bytes: number } } }>;
  return { tx: j[0]!.stats64.tx.bytes, rx: j[0]!.stats64.rx.bytes };
}

function tryNetem(ns: string, dev: string, s: LinkShape, loss: number): boolean {
  try {
    ip(['-n', ns, 'link', 'show', 'dev', dev]);
    execFileSync('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'replace', 'dev', dev, 'root', 'netem',
      'delay', `${s.rttMs / 2}ms`, 'loss', `${loss}%`, 'rate', `${s.rateKbit}kbit`, 'limit', '1000'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Opens the link. `forceLoopback` runs the loopback fallback on purpose (its own test).
 */
export async function openSatLink(shape: Partial<LinkShape> = {}, o: { forceLoopback?: boolean; seed?: number } = {}): Promise<SatLink> {
  const s: LinkShape = { ...SATELLITE, ...shape };
  hookExit();
  const children = new Set<ChildProcess>();
  const spawnWith = (prefix: string[], cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess => {
    const argv = [...prefix, cmd, ...args];
    // its own process group, so teardown takes a child's children too
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...opts, detached: true });
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  };
  const killChildren = (): void => { for (const c of children) killTree(c); };

  const avail = o.forceLoopback ? { ok: false, why: 'loopback asked for' } : netnsAvailable();
  if (!avail.ok) {
    const link: SatLink = {
      mode: 'loopback', shaper: 'none', shape: s, hubIp: '127.0.0.1', boxIp: '127.0.0.1',
      describe: `loopback, unshaped: ${avail.why}`,
      prefix: () => [],
      spawnIn: (_side, cmd, args, opts) => spawnWith([], cmd, args, opts),
      // no link to cut on loopback: the tests cut connections at the origin instead
      down: async () => {}, up: async () => {}, drop: async (ms) => { await sleep(ms); },
      counters: async () => { const c = readCounters(undefined, 'lo'); return { hubTx: c.tx, hubRx: c.rx, boxTx: c.tx, boxRx: c.rx }; },
      carried: async () => undefined,
      close: async () => { killChildren(); live.delete(killChildren); },
    };
    live.add(killChildren);
    return link;
  }

  const tag = randomBytes(3).toString('hex');
  const hubNs = `ych-hub-${tag}`; const boxNs = `ych-box-${tag}`;
  const hubDev = `ychh-${tag}`; const boxDev = `ychb-${tag}`;
  const net = `10.${100 + (parseInt(tag.slice(0, 2), 16) % 100)}.${parseInt(tag.slice(2, 4), 16)}`;
  const hubIp = `${net}.1`; const boxIp = `${net}.2`;
  let forwarder: ChildProcess | undefined;
  let closed = false;
  const teardown = (): void => {
    if (closed) return;
    closed = true;
    killChildren();
    if (forwarder) killTree(forwarder);
    // a namespace lives on while a process is inside it: children are killed first
    for (const ns of [hubNs, boxNs]) { try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* not made */ } }
    live.delete(teardown);
  };
  live.add(teardown);

  try {
    ip(['netns', 'add', hubNs]);
    ip(['netns', 'add', boxNs]);
    for (const ns of [hubNs, boxNs]) {
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      if (s.congestion) execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `net.ipv4.tcp_congestion_control=${s.congestion}`], { stdio: 'pipe' });
    }
    ip(['link', 'add', hubDev, 'type', 'veth', 'peer', 'name', boxDev]);
    ip(['link', 'set', hubDev, 'netns', hubNs]);
    ip(['link', 'set', boxDev, 'netns', boxNs]);
    ip(['-n', hubNs, 'addr', 'add', `${hubIp}/30`, 'dev', hubDev]);
    ip(['-n', boxNs, 'addr', 'add', `${boxIp}/30`, 'dev', boxDev]);
    ip(['-n', hubNs, 'link', 'set', hubDev, 'up']);
    ip(['-n', boxNs, 'link', 'set', boxDev, 'up']);
  } catch (err) {
    teardown();
    throw new Error(`could not build the namespaces: ${errText(err)}`);
  }

  let shaper: SatLink['shaper'] = 'netem';
  let control: ((cmd: string) => Promise<Record<string, unknown>>) | undefined;
  if (!(tryNetem(hubNs, hubDev, s, s.lossPct) && tryNetem(boxNs, boxDev, s, s.lossPct))) {
    // no sch_netem: the veth pair goes, the userspace link takes its place
    shaper = 'tun-forwarder';
    try { ip(['-n', hubNs, 'link', 'del', hubDev]); } catch { /* the pair goes with one end */ }
    const script = fileURLToPath(new URL('./satlink.py', import.meta.url));
    const rate = (s.rateKbit * 1000) / 8;
    // the modem's buffer: a quarter second of traffic (32 kB at least). Bigger buffers only add
    // to what a dropped or abandoned connection had in flight.
    const limit = Math.max(32 * 1024, Math.round(rate / 4));
    forwarder = spawn('python3', [script, hubNs, boxNs, hubDev, boxDev, String(s.rttMs / 2), String(s.lossPct / 100),
      String(s.rateKbit), String(limit), String(o.seed ?? 1)], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const lines = createInterface({ input: forwarder.stdout! });
    const waiting: Array<(v: Record<string, unknown>) => void> = [];
    let stderr = '';
    forwarder.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const ready = new Promise<void>((resolve, reject) => {
      forwarder!.once('exit', (code) => reject(new Error(`satlink.py exited (${code}): ${stderr.trim()}`)));
      lines.on('line', (l) => {
        const v = JSON.parse(l) as Record<string, unknown>;
        if (v.ready) { resolve(); return; }
        waiting.shift()?.(v);
      });
    });
    try { await ready; } catch (err) { teardown(); throw err; }
    control = (cmd) => new Promise((resolve) => { waiting.push(resolve); forwarder!.stdin!.write(cmd + '\n'); });
    try {
      ip(['-n', hubNs, 'addr', 'add', hubIp, 'peer', boxIp, 'dev', hubDev]);
      ip(['-n', boxNs, 'addr', 'add', boxIp, 'peer', hubIp, 'dev', boxDev]);
      ip(['-n', hubNs, 'link', 'set', hubDev, 'up']);
      ip(['-n', boxNs, 'link', 'set', boxDev, 'up']);
    } catch (err) {
      teardown();
      throw new Error(`could not address the TUN link: ${errText(err)}`);
    }
  }

  const netemLoss = (loss: number): void => { tryNetem(hubNs, hubDev, s, loss); tryNetem(boxNs, boxDev, s, loss); };
  const link: SatLink = {
    mode: 'netns', shaper, shape: s, hubIp, boxIp,
    describe: `netns ${hubNs}↔${boxNs}, ${s.rttMs} ms RTT, ${s.lossPct}% loss, ${s.rateKbit} kbit/s `
      + (shaper === 'netem' ? '(tc netem)' : '(no sch_netem in this kernel: userspace TUN link, satlink.py)'),
    prefix: (side) => ['ip', 'netns', 'exec', side === 'hub' ? hubNs : boxNs],
    spawnIn: (side, cmd, args, opts) => spawnWith(link.prefix(side), cmd, args, opts),
    down: async () => { if (control) await control('down'); else netemLoss(100); },
    up: async () => { if (control) await control('up'); else netemLoss(s.lossPct); },
    drop: async (ms) => { await link.down(); await sleep(ms); await link.up(); },
    counters: async () => {
      const h = readCounters(hubNs, hubDev); const b = readCounters(boxNs, boxDev);
      return { hubTx: h.tx, hubRx: h.rx, boxTx: b.tx, boxRx: b.rx };
    },
    carried: async () => {
      if (!control) return undefined;
      const st = await control('stats') as { hub_to_box: { carried_bytes: number }; box_to_hub: { carried_bytes: number } };
      return { hubToBox: st.hub_to_box.carried_bytes, boxToHub: st.box_to_hub.carried_bytes };
    },
    close: async () => { teardown(); },
  };
  return link;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for a child to exit; its code, or the signal's name. */
export function exited(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((r) => child.once('exit', (code, sig) => r(code ?? sig ?? -1)));
}
