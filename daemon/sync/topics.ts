/**
 * The hub's MQTT topics as one box sees them (issue 9, MQTT contract). Down-topics come from the
 * hub and are relayed into the local broker; up-topics go to the hub through the outbox. The two
 * sets never overlap, which is what keeps the bridge from echoing the hub's messages back.
 */
export const topics = {
  catalogFilter: (channel: string): string => `yachay/catalog/${channel}/#`,
  assignFilter: (school: string): string => `yachay/${school}/assign/#`,
  cmdFilter: (school: string): string => `yachay/${school}/cmd/#`,
  status: (school: string): string => `yachay/${school}/status`,
  telemetry: (school: string): string => `yachay/${school}/telemetry`,
  report: (school: string): string => `yachay/${school}/sync/report`,
  ack: (school: string, id: string): string => `yachay/${school}/sync/ack/${id}`,
  request: (school: string, id: string): string => `yachay/${school}/request/${id}`,
  /** down, retained: the hub's signed release for one arch (issue 11 item 7) */
  release: (arch: string): string => `yachay/release/${arch}`,
  /** up: update outcomes (switching, updated, rolled-back, refused) */
  update: (school: string): string => `yachay/${school}/update`,
  /** local only: the teacher page's progress bar */
  progress: (school: string): string => `yachay/${school}/sync/progress`,
} as const;

export type DownKind = 'catalog' | 'assign' | 'cmd' | 'release';

/** What a message from the hub is, or undefined for a topic this box never subscribed to. */
export function downKind(topic: string, school: string): { kind: DownKind; rest: string } | undefined {
  const parts = topic.split('/');
  if (parts[0] !== 'yachay') return undefined;
  if (parts[1] === 'catalog' && parts.length === 4) return { kind: 'catalog', rest: parts[3]! };
  if (parts[1] === 'release' && parts.length === 3) return { kind: 'release', rest: parts[2]! };
  if (parts[1] === school && parts.length === 4 && (parts[2] === 'assign' || parts[2] === 'cmd')) {
    return { kind: parts[2] as DownKind, rest: parts[3]! };
  }
  return undefined;
}

/**
 * The outbox's eviction class of an up-topic: telemetry is a sample (the next one replaces it),
 * usage and feedback are nice to have, and sync acks, reports and teachers' requests are what the
 * hub needs to know what a school holds and wants: they are never dropped. Undefined: not a topic
 * this box may publish on (the hub's ACL would refuse it anyway).
 */
export function upKind(topic: string, school: string): 'telemetry' | 'other' | 'keep' | undefined {
  const p = `yachay/${school}/`;
  if (!topic.startsWith(p)) return undefined;
  const rest = topic.slice(p.length);
  if (rest === 'telemetry') return 'telemetry';
  if (rest === 'usage' || rest === 'feedback' || rest === 'status') return 'other';
  if (rest === 'update') return 'keep';
  if (/^sync\/[A-Za-z0-9_./-]+$/.test(rest) || /^request\/[A-Za-z0-9_.-]+$/.test(rest)) return 'keep';
  return undefined;
}
