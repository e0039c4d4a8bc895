// Starts Yachay's LAN server on a content store for test/bench/serve.sh and prints
// `READY <port>` once it listens. Run as `node --import tsx` so that this process is the server
// whose RSS the bench reads from /proc.
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { HttpService } from '../../daemon/http/server.js';

const [store, port, dbDir] = process.argv.slice(2);
if (!store || !port || !dbDir) throw new Error('usage: serve-yachay.mts <store> <port> <db-dir>');
const db = openDb(join(dbDir, 'bench.db'));
const svc = new HttpService({
  cfg: { host: '127.0.0.1', port: Number(port), maxUploadMB: 64, loginAttemptsPerMinute: 5, studentsNeedLogin: false },
  log: pino({ level: 'warn' }),
  db, store,
  lessons: { list: () => [], get: () => undefined },
  users: new Users(db),
  health: () => ({ db: db.open }),
});
await svc.start(new AbortController().signal);
// SIGUSR2 prints the longest event-loop delay since the last one (`LOOP <ms>`): serve.sh asks
// after each round, to tell a stalled loop from a tail that forms outside the process
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
process.on('SIGUSR2', () => {
  process.stdout.write(`LOOP ${(loop.max / 1e6).toFixed(1)}\n`);
  loop.reset();
});
process.stdout.write(`READY ${svc.port}\n`);
const stop = async (): Promise<void> => {
  await svc.stop();
  db.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
