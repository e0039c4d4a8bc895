/**
 * scrypt runs on libuv's four threads, the same ones that read media files and write uploads. A
 * flood of wrong passwords from many addresses (each under its own login limit) would take all
 * four and stall the class's video. The gate lets at most `max` hashes run, lets a few wait, and
 * refuses the rest at once, before any hashing: a busy box answers "try again", it never stalls.
 */
export class HashBusyError extends Error {
  override readonly name = 'HashBusyError';
  constructor() { super('too many password checks at once: try again in a few seconds'); }
}

export class HashGate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  /** the most hashes that ever ran at once, and how many were refused (for tests and /metrics) */
  peak = 0;
  refused = 0;

  constructor(private readonly max = 2, private readonly maxWaiting = 8) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) {
      if (this.waiting.length >= this.maxWaiting) { this.refused++; throw new HashBusyError(); }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.active++;
    }
    this.peak = Math.max(this.peak, this.active);
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      // the slot passes straight to the next waiter: `active` stays the same
      if (next) next(); else this.active--;
    }
  }
}

/** one gate per process: every scrypt of the box goes through it */
export const scryptGate = new HashGate();
