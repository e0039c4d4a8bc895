import { basename } from 'node:path';
import type { JobEvent } from './worker.js';

/**
 * A job's event as the school's broker carries it: every teacher's page may read job topics, so
 * an error keeps its code and its words but not the box's folders (`/var/lib/yachay/sources/…`
 * says how the box is laid out and whose upload failed: only the file name is kept).
 */
export function publicJobEvent(e: JobEvent): JobEvent {
  if (!e.error) return e;
  return { ...e, error: e.error.replace(/(?:\/[^\s/'"`:,()]+)+\/?/g, (p) => basename(p) || '/') };
}
