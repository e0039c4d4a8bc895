/**
 * Who may publish and subscribe where on a school's broker. Pure functions over topic strings:
 * no I/O, no broker types, so the table is tested on its own (test/unit/broker/acl.test.ts).
 *
 * Topics (DESIGN.md), all under `yachay/<school>/`:
 *   catalog/<id>    retained, down       pub: admin, device      sub: everyone
 *   sync/status     up                   pub: admin, device      sub: admin, device
 *   telemetry       up                   pub: admin, device      sub: admin, device
 *   cmd/<verb>      down, control        pub: admin, device      sub: admin, device
 *   class/<room>    LAN lesson push      pub: admin, teacher     sub: admin, teacher, student
 *   health          retained             pub: the box only       sub: everyone
 *   jobs/#          job progress         pub: the box only       sub: admin, teacher
 *   $SYS/#          broker internals     pub: nobody             sub: admin
 *
 * The box's own messages (health, job progress, class pushes from the HTTP API) go through
 * BrokerService.publish(), which never reaches these checks. Everything not listed is denied.
 */

export type Role = 'admin' | 'teacher' | 'device';

export type Principal =
  | { kind: 'user'; username: string; role: Role }
  /** a student's web page, connected with a short-lived read-only token */
  | { kind: 'student'; token: string };

type Who = Role | 'student';

/** Patterns relative to `yachay/<school>/`; they use MQTT wildcards with their usual meaning. */
const PUBLISH: Record<Who, readonly string[]> = {
  admin: ['#'],
  teacher: ['class/+'],
  device: ['catalog/+', 'sync/status', 'telemetry', 'cmd/+'],
  // students only read: never publish anything, anywhere
  student: [],
};

/** Topics whose content is the box's own state: no client may publish there, not even admin. */
const BOX_ONLY: readonly string[] = ['health', 'jobs/#'];

const SUBSCRIBE: Record<Who, readonly string[]> = {
  admin: ['#'],
  teacher: ['class/+', 'catalog/#', 'health', 'jobs/#'],
  device: ['cmd/#', 'catalog/#', 'health', 'sync/status', 'telemetry'],
  student: ['class/+', 'catalog/#', 'health'],
};

function who(p: Principal): Who {
  return p.kind === 'student' ? 'student' : p.role;
}

/** A school id is one plain topic level: no separators, wildcards, `$` or NUL. */
function validSchool(school: string): boolean {
  return /^[a-z0-9-]+$/.test(school);
}

/**
 * A topic name as a publisher may send it: non-empty [MQTT-4.7.3-1], no wildcards
 * [MQTT-3.3.2-2], no NUL [MQTT-4.7.3-2]. Aedes checks the first two already; we check again so
 * these functions are safe on their own.
 */
export function validTopic(topic: string): boolean {
  return topic.length > 0 && !/[+#\u0000]/.test(topic);
}

/**
 * A topic filter: non-empty, `#` only as the whole last level [MQTT-4.7.1-2], `+` only as a
 * whole level [MQTT-4.7.1-3], no NUL.
 */
export function validFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return levels.every((l, i) =>
    (l === '#' && i === levels.length - 1) || l === '+' || !/[+#]/.test(l));
}

/**
 * Does filter `f` match topic name `topic`? [MQTT-4.7] semantics: `+` one level, `#` the parent
 * and any number of child levels, and a filter starting with a wildcard does not match a topic
 * starting with `$` [MQTT-4.7.2-1].
 */
export function matches(f: string, topic: string): boolean {
  const fl = f.split('/');
  const tl = topic.split('/');
  if (topic.startsWith('$') && (fl[0] === '+' || fl[0] === '#')) return false;
  for (let i = 0; i < fl.length; i++) {
    const l = fl[i];
    if (l === '#') return true;
    if (i >= tl.length) return false;
    if (l !== '+' && l !== tl[i]) return false;
  }
  return fl.length === tl.length;
}

/**
 * Is every topic that filter `f` can match also matched by pattern `p`? This is how wildcard
 * subscriptions are checked: `#` or `yachay/+/cmd/+` is refused unless the principal may read
 * everything it could ever deliver. Checking one pattern at a time is conservative (a filter
 * covered only by the union of two patterns is refused), never permissive.
 */
export function covers(p: string, f: string): boolean {
  const pl = p.split('/');
  const fl = f.split('/');
  for (let i = 0; i < pl.length; i++) {
    const pi = pl[i];
    if (pi === '#') return true; // `#` covers any remainder, including none ("a/#" matches "a")
    const fi = fl[i];
    if (fi === undefined) return false; // p needs more levels than f guarantees
    if (fi === '#') return false; // f reaches arbitrarily deep, p does not
    if (pi === '+') continue; // one level of anything, whatever f has there
    if (fi !== pi) return false; // f's `+` or a different literal escapes p's literal
  }
  // f is longer than p and p had no `#`; or equal length, covered level by level. An f ending
  // in "/#" also matches its parent, which p (same length minus the #) does not reach.
  return fl.length === pl.length;
}

function rooted(school: string, rel: string): string {
  return `yachay/${school}/${rel}`;
}

export function canPublish(p: Principal, topic: string, school: string): boolean {
  if (!validSchool(school) || !validTopic(topic)) return false;
  // `$` topics are for the server's own use [MQTT-4.7.2-1]; Aedes' default hook refuses $SYS/
  // publishes for the same reason (a client could fake broker state).
  if (topic.startsWith('$')) return false;
  if (BOX_ONLY.some((rel) => matches(rooted(school, rel), topic))) return false;
  return PUBLISH[who(p)].some((rel) => matches(rooted(school, rel), topic));
}

export function canSubscribe(p: Principal, filter: string, school: string): boolean {
  if (!validSchool(school) || !validFilter(filter)) return false;
  const role = who(p);
  if (filter.startsWith('$')) {
    // $SYS/ carries broker internals (client ids, load): operators only. Other `$` filters
    // (e.g. `$share/...` from MQTT 5 clients, which Aedes treats as plain topics) are refused.
    return role === 'admin' && covers('$SYS/#', filter);
  }
  return SUBSCRIBE[role].some((rel) => covers(rooted(school, rel), filter));
}
