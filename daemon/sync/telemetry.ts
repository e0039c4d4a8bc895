import { statfs } from 'node:fs/promises';
import { errorTally } from '../log.js';
import type { Logger } from '../log.js';
import type { Outbox } from './outbox.js';
import { topics } from './topics.js';
import type { SyncService } from './engine.js';

/**
 * A sample of the box's health for the hub's fleet view, every ~10 min, through the outbox (so a
 * week offline sends a week of samples, oldest dropped first when the outbox is full).
 */
export interface TelemetryDeps {
  school: string;
  version: string;
  dataDir: string;
  outbox: Outbox;
  engine: SyncService;
  lessonCount: () => number;
  log: Logger;
  everyMs?: number;
}

async function cpuTempC(): Promise<number | undefined> {
  try {
    const si = await import('systeminformation');
    const t = await si.cpuTemperature();
    return typeof t.main === 'number' && t.main > 0 ? t.main : undefined;
  } catch {
    return undefined;
  }
}

export async function sampleTelemetry(d: TelemetryDeps): Promise<Record<string, unknown>> {
  const s = await statfs(d.dataDir);
  const r = d.engine.lastReport;
  return {
    at: d.engine.clock.now() ?? Date.now(), version: d.version,
    diskFreeBytes: s.bavail * s.bsize, tempC: await cpuTempC(),
    lessons: d.lessonCount(), pending: d.engine.wanted().length,
    wanBytesLastNight: r?.bytes ?? 0,
    // what went wrong lately, so the central team sees it without the school's journal
    errors: { syncFailed: r?.failed.length ?? 0, ...errorTally.summary(5) },
  };
}

export class Telemetry {
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly d: TelemetryDeps) {}

  start(): void {
    const every = this.d.everyMs ?? 10 * 60_000;
    const send = (): void => {
      sampleTelemetry(this.d)
        .then((t) => this.d.outbox.add(topics.telemetry(this.d.school), JSON.stringify(t)))
        .catch((err: unknown) => this.d.log.warn({ err }, 'telemetry not sampled'));
    };
    // the first sample a minute after start: a box rebooting in a loop should not flood the outbox
    this.timer = setInterval(send, every);
    this.timer.unref();
  }

  stop(): void { clearInterval(this.timer); }
}
