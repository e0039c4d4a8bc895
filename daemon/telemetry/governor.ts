import { readFile } from 'node:fs/promises';
import type { GovernorConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Service } from '../service.js';
import { encodesPaused, pauseEncodes, resumeEncodes } from '../media/run.js';

/**
 * A box on a hot classroom shelf or a weak power supply: when the CPU reaches `hotC`, or the Pi
 * firmware says the voltage is low, every encode is paused (SIGSTOP) until the CPU has cooled
 * to `resumeC` and the power is good again. Serving students is never slowed: only ffmpeg stops.
 * The files are config so a test (and a Jetson) can point them elsewhere.
 */
export interface GovernorState { tempC?: number | undefined; underVoltage: boolean; paused: boolean; since: number }

export async function readTempC(files: readonly string[]): Promise<number | undefined> {
  let max: number | undefined;
  for (const f of files) {
    const text = await readFile(f, 'utf8').catch(() => undefined);
    const v = Number(text?.trim());
    if (text === undefined || !Number.isFinite(v)) continue;
    // sysfs gives millidegrees; a few drivers give degrees
    const c = Math.abs(v) > 1000 ? v / 1000 : v;
    max = max === undefined ? c : Math.max(max, c);
  }
  return max;
}

export async function readUnderVoltage(file: string): Promise<boolean> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  const bits = Number.parseInt(text.trim().replace(/^throttled=/, ''), 16);
  return Number.isFinite(bits) && (bits & 0x1) !== 0;
}

export class GovernorService implements Service {
  readonly name = 'governor';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  state: GovernorState = { underVoltage: false, paused: false, since: Date.now() };

  constructor(private readonly cfg: GovernorConfig, private readonly log: Logger) {}

  async start(): Promise<void> {
    await this.check();
    this.timer = setInterval(() => { this.running = this.check(); }, this.cfg.intervalMs);
    this.timer.unref();
  }

  /** one reading and, when it crosses a threshold, one decision */
  async check(): Promise<GovernorState> {
    const tempC = await readTempC(this.cfg.thermalFiles);
    const underVoltage = await readUnderVoltage(this.cfg.throttledFile);
    const hot = tempC !== undefined && tempC >= this.cfg.hotC;
    const cool = tempC === undefined || tempC <= this.cfg.resumeC;
    let paused = encodesPaused();
    if (!paused && (hot || underVoltage)) {
      pauseEncodes(); paused = true;
      this.log.warn({ tempC, underVoltage }, 'encodes paused: the box is hot or under-powered (serving continues)');
      this.state = { tempC, underVoltage, paused, since: Date.now() };
    } else if (paused && cool && !underVoltage) {
      resumeEncodes(); paused = false;
      this.log.info({ tempC }, 'encodes resumed');
      this.state = { tempC, underVoltage, paused, since: Date.now() };
    } else {
      this.state = { ...this.state, tempC, underVoltage, paused };
    }
    return this.state;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    // a stopping box must let its encodes receive their SIGINT
    if (encodesPaused()) resumeEncodes();
  }

  healthy(): boolean {
    return true;
  }
}
