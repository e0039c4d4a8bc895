/**
 * Failed logins per client address in a sliding one-minute window, shared by every door a
 * password comes through (HTTP login and setup, MQTT over TCP and WebSocket): five guesses over
 * HTTP do not buy five more over MQTT. When `limit` failures are in the window, every further
 * attempt (even a right password) is refused until the oldest one leaves it; that is checked
 * before scrypt runs, so guessing also costs the box no CPU.
 *
 * An attempt counts as a failure from the moment it starts (reserve), not when its hash
 * finishes: forty guesses sent at once would otherwise all be checked before the first failure
 * is written down.
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();
  constructor(private readonly limit: number, private readonly windowMs: number, private readonly now: () => number = Date.now) {}

  /** Seconds to wait, or 0 when an attempt is allowed. */
  retryAfter(ip: string): number {
    const list = this.recent(ip);
    if (list.length < this.limit) return 0;
    return Math.max(1, Math.ceil((list[0]! + this.windowMs - this.now()) / 1000));
  }

  fail(ip: string): void {
    const list = this.recent(ip);
    list.push(this.now());
    this.failures.set(ip, list);
  }

  /**
   * Counts an attempt as failed now; the returned function takes it back when the password was
   * right (a success never clears earlier failures: one valid account must not buy more guesses).
   */
  reserve(ip: string): () => void {
    const at = this.now();
    this.fail(ip);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const list = this.failures.get(ip);
      const i = list?.lastIndexOf(at) ?? -1;
      if (list && i >= 0) list.splice(i, 1);
    };
  }

  prune(): void {
    for (const ip of [...this.failures.keys()]) if (this.recent(ip).length === 0) this.failures.delete(ip);
  }

  private recent(ip: string): number[] {
    const cutoff = this.now() - this.windowMs;
    const list = (this.failures.get(ip) ?? []).filter((t) => t > cutoff);
    if (list.length) this.failures.set(ip, list); else this.failures.delete(ip);
    return list;
  }
}
