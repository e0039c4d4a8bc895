import type { Logger } from './log.js';
import type { Service } from './service.js';
import { withTimeout } from './service.js';

/**
 * The composition root's runtime half: starts services in dependency order and stops the
 * ones that started in reverse, each within a deadline, so a hung part cannot keep the box
 * from restarting.
 */
export class App {
  private started: Service[] = [];
  private readonly starting = new AbortController();
  private stopping: Promise<void> | undefined;
  exitCode = 0;

  constructor(private readonly services: Service[], private readonly log: Logger, private readonly stopMs: number) {}

  async start(): Promise<void> {
    for (const svc of this.services) {
      if (this.starting.signal.aborted) return;
      const t0 = performance.now();
      await svc.start(this.starting.signal);
      this.started.push(svc);
      this.log.info({ svc: svc.name, ms: Math.round(performance.now() - t0) }, 'started');
    }
  }

  health(): Record<string, boolean> {
    const out: Record<string, boolean> = {};
    for (const svc of this.services) out[svc.name] = this.started.includes(svc) && (svc.healthy?.() ?? true);
    return out;
  }

  stop(reason: string): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    this.log.info({ reason }, 'stopping');
    this.starting.abort(reason);
    for (const svc of [...this.started].reverse()) {
      try {
        await withTimeout(svc.stop(), this.stopMs, `stopping ${svc.name}`);
        this.log.info({ svc: svc.name }, 'stopped');
      } catch (err) {
        this.log.error({ err, svc: svc.name }, 'stop failed');
        this.exitCode = 1;
      }
    }
    this.started = [];
  }
}
