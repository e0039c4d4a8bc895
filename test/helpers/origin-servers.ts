import { spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { SatLink } from './netns.js';
import { sleep } from './netns.js';

/**
 * Real static servers on the hub's side of the link: nginx over an origin folder (the layout any
 * static server can serve) and an rsync daemon over the same lesson files, each with a config
 * generated in a temp folder and run in the foreground so teardown can stop it.
 */

export interface Served { url: string; port: number; child: ChildProcess; stop(): void }

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function portFor(link: SatLink): Promise<number> {
  // a fresh namespace has every port free; loopback is shared with the rest of the machine
  return link.mode === 'netns' ? 20000 + Math.floor(Math.random() * 30000) : freePort();
}

/** Waits until something accepts on ip:port as seen from `side` (bash's /dev/tcp, no extra tool). */
export async function waitPort(link: SatLink, side: 'hub' | 'box', host: string, port: number, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const argv = [...link.prefix(side), 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`];
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore', timeout: 3000 });
    if (r.status === 0) return;
    await sleep(150);
  }
  throw new Error(`nothing listens on ${host}:${port} after ${ms} ms`);
}

function stopper(child: ChildProcess): () => void {
  return () => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  };
}

function tail(child: ChildProcess): () => string {
  let err = '';
  child.stderr?.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
  child.stdout?.on('data', () => {});
  return () => err.trim();
}

export async function startNginx(link: SatLink, root: string, work: string, port?: number): Promise<Served> {
  port ??= await portFor(link);
  mkdirSync(work, { recursive: true });
  const conf = join(work, 'nginx.conf');
  const t = (n: string): string => join(work, n);
  writeFileSync(conf, `worker_processes 1;
daemon off;
user root;
pid ${t('nginx.pid')};
error_log ${t('error.log')} warn;
events { worker_connections 256; }
http {
  access_log ${t('access.log')};
  client_body_temp_path ${t('body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};
  default_type application/octet-stream;
  sendfile on;
  keepalive_timeout 65;
  server {
    listen ${link.hubIp}:${port};
    root ${root};
    location / { autoindex off; }
  }
}
`);
  const child = link.spawnIn('hub', 'nginx', ['-c', conf, '-p', work, '-e', t('error.log')]);
  const err = tail(child);
  try { await waitPort(link, 'hub', link.hubIp, port); } catch (e) { stopper(child)(); throw new Error(`nginx did not start: ${err()} (${(e as Error).message})`); }
  return { url: `http://${link.hubIp}:${port}/`, port, child, stop: stopper(child) };
}

export async function startRsyncd(link: SatLink, root: string, work: string): Promise<Served> {
  const port = await portFor(link);
  mkdirSync(work, { recursive: true });
  const conf = join(work, 'rsyncd.conf');
  writeFileSync(conf, `pid file = ${join(work, 'rsyncd.pid')}
log file = ${join(work, 'rsyncd.log')}
use chroot = no
uid = root
gid = root
max connections = 8

[lessons]
  path = ${root}
  read only = yes
`);
  const child = link.spawnIn('hub', 'rsync', ['--daemon', '--no-detach', `--config=${conf}`, `--address=${link.hubIp}`, `--port=${port}`]);
  const err = tail(child);
  try { await waitPort(link, 'hub', link.hubIp, port); } catch (e) { stopper(child)(); throw new Error(`rsync --daemon did not start: ${err()} (${(e as Error).message})`); }
  return { url: `rsync://${link.hubIp}:${port}/lessons/`, port, child, stop: stopper(child) };
}
