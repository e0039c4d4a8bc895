import { Duplex } from 'node:stream';
import type { Principal } from './acl.js';

/**
 * Aedes reads a whole MQTT packet into memory before anyone can look at it, whatever its size
 * (a teacher's 100 MB retained message reached every student page that opened). The gate sits
 * between the socket and Aedes and reads only MQTT's fixed header: when a packet announces more
 * than the client's limit, the connection is closed before its body is buffered anywhere.
 */

/** before login: as much as the largest role may send (Aedes queues packets sent early) */
export const CONNECT_LIMIT = 256 * 1024;
/** a retained message is stored and sent to every page that opens: class pushes are small JSON */
export const RETAIN_LIMIT = 16 * 1024;

/** students only subscribe and ping; devices report; teachers and admins push lessons to a class */
export function packetLimitFor(p: Principal): number {
  if (p.kind === 'student') return 4 * 1024;
  return p.role === 'device' ? 64 * 1024 : 256 * 1024;
}

export class PacketTooLargeError extends Error {
  override readonly name = 'PacketTooLargeError';
}

export class MqttGate extends Duplex {
  /** bytes of one packet's variable header + payload; lowered once the client is known */
  limit: number;
  private state: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private shift = 0;
  private left = 0;

  constructor(private readonly inner: Duplex, limit = CONNECT_LIMIT) {
    super({ allowHalfOpen: false });
    this.limit = limit;
    inner.on('data', (chunk: Buffer) => {
      if (!this.admit(chunk)) return;
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => { if (!this.destroyed) this.destroy(); });
  }

  /** for logs and the login limiter: the peer of a TCP socket */
  get remoteAddress(): string | undefined {
    return (this.inner as { remoteAddress?: string }).remoteAddress;
  }

  /** Walks the packet headers in `chunk`; false (and the connection closed) when one is too big. */
  private admit(chunk: Buffer): boolean {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'body') {
        const n = Math.min(this.left, chunk.length - i);
        this.left -= n; i += n;
        if (this.left === 0) this.state = 'type';
        continue;
      }
      if (this.state === 'type') {
        this.state = 'length'; this.length = 0; this.shift = 0; i++;
        continue;
      }
      // remaining length: 7 bits a byte, at most 4 bytes [MQTT-2.2.3]
      const b = chunk[i++]!;
      this.length += (b & 0x7f) * 2 ** this.shift;
      this.shift += 7;
      if (b & 0x80) {
        if (this.shift >= 28) return this.refuse('malformed remaining length');
        continue;
      }
      if (this.length > this.limit) return this.refuse(`a packet of ${this.length} bytes is over this client's ${this.limit}-byte limit`);
      this.left = this.length;
      this.state = this.left > 0 ? 'body' : 'type';
    }
    return true;
  }

  private refuse(why: string): false {
    this.destroy(new PacketTooLargeError(why));
    return false;
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.inner.write(chunk, encoding, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.inner.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.inner.destroy();
    cb(err);
  }
}
