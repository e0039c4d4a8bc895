import { basename } from 'node:path';
import type { JobEvent } from './worker.js';

/**
 * A job's event as the school's broker carries it: every teacher's page may read job topics, so
 * an error keeps its code and its words but not the box's folders (`/var/lib/yachay/sources/…`
 * says how the box is laid out and whose upload failed: only the file name is kept).
 */
export function publicJobEvent(e: JobEvent): JobEvent {
  if (!e.error) return e;
  return { ...e, error: withoutPaths(e.error) };
}

/** an error as anyone on the LAN may read it: absolute paths cut to their file name */
export function withoutPaths(text: string): string {
  return text.replace(/(?:\/[^\s/'"`:,()]+)+\/?/g, (p) => basename(p) || '/');
}
