import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * Talking to systemd when it runs the box (Type=notify): READY once every service has started,
 * WATCHDOG while the event loop turns and the database answers, STOPPING when a stop begins.
 * Outside systemd (no NOTIFY_SOCKET) every call does nothing. The datagram is sent by the small
 * native addon native/src/sys/notify.cc.
 */
interface SysAddon { notify(path: string, message: string): boolean }

let addon: SysAddon | undefined | null;
function load(): SysAddon | undefined {
  if (addon !== undefined) return addon ?? undefined;
  try {
    const require = createRequire(import.meta.url);
    addon = require(fileURLToPath(new URL('../../native/build/Release/yachay_sys.node', import.meta.url))) as SysAddon;
  } catch {
    addon = null;
  }
  return addon ?? undefined;
}

export interface Notifier {
  readonly active: boolean;
  send(message: string): void;
  /** half of WatchdogSec, or undefined when systemd asks for no watchdog */
  readonly watchdogMs: number | undefined;
}

export function systemdNotifier(env: NodeJS.ProcessEnv = process.env, onError?: (err: unknown) => void): Notifier {
  const path = env.NOTIFY_SOCKET;
  const usec = Number(env.WATCHDOG_USEC);
  // WATCHDOG_PID, when set, names the process the watchdog is for (not us after a fork)
  const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
  const sys = path ? load() : undefined;
  if (path && !sys) onError?.(new Error('NOTIFY_SOCKET is set but native/build/Release/yachay_sys.node is missing: run `npm run build:native`'));
  return {
    active: Boolean(path && sys),
    watchdogMs: path && sys && forUs && usec > 0 ? Math.max(500, Math.floor(usec / 2000)) : undefined,
    send(message) {
      if (!path || !sys) return;
      try { sys.notify(path, message); } catch (err) { onError?.(err); }
    },
  };
}
