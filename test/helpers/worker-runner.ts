/**
 * A worker process for the crash tests: `node --import tsx worker-runner.ts <dataDir> <leaseSeconds>`.
 * Prints every job event as one JSON line on stdout, so the test knows when to kill it.
 */
import { jobsRig } from './jobs.js';

const [dataDir, lease] = process.argv.slice(2);
if (!dataDir) throw new Error('usage: worker-runner.ts <dataDir> [leaseSeconds]');
const rig = jobsRig(dataDir, {
  jobs: { leaseSeconds: Number(lease ?? 2), workers: 1 },
  onEvent: (e) => process.stdout.write(JSON.stringify(e) + '\n'),
  logLevel: process.env.YACHAY_LOG_LEVEL ?? 'warn',
});
await rig.worker.start(new AbortController().signal);
const stop = (): void => { void rig.close().then(() => process.exit(0)); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
