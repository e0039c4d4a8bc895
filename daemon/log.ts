import { pino } from 'pino';
import type { Logger } from 'pino';

export type { Logger };

/**
 * Logs go to stderr as JSON lines so that stdout stays free for results (`--plan` JSON,
 * progress lines) that scripts read.
 */
export function createLogger(level: string): Logger {
  return pino({ level, base: { app: 'yachay' } }, pino.destination({ fd: 2, sync: true }));
}
