import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';

/**
 * The first reader of every connection to the LAN server.
 *
 * Nearly every request on a school network is a player asking for a playlist or a segment that
 * is already in memory. Node's HTTP layer (parser, IncomingMessage, ServerResponse, header
 * validation) costs more per request than the answer itself: with it, one core served half of
 * what nginx serves with one worker. The front reads a connection's bytes first, recognises
 * only the plainest request — `GET`/`HEAD`, HTTP/1.1, no body, CRLF lines, a small head — and
 * asks `answer` whether it can be answered from memory. Anything else (a body, an upgrade,
 * `Connection: close`, a malformed or oversized head, a request `answer` declines) hands the
 * connection, with every byte not yet answered, to Node's HTTP server for good; Node then gives
 * it the proper answer or error. The front never decides anything Node would answer
 * differently: it only skips work for requests whose answer is already known.
 */

export interface FrontAnswer {
  status: number;
  headers: OutgoingHttpHeaders;
  /** absent for HEAD and 304 */
  body?: Buffer | string;
  /** called once the body left for the network (its byte count), or 0 if the socket failed */
  sent(bytes: number): void;
}

export interface FrontRequest {
  method: 'GET' | 'HEAD';
  target: string;
  /** lower-case names; only headers a cached answer depends on */
  headers: IncomingHttpHeaders;
}

export interface FrontOptions {
  /** the answer from memory, or undefined to let Node's server have the connection */
  answer: (req: FrontRequest) => FrontAnswer | undefined;
  /** gives a socket (and, after, the bytes not yet answered) to Node's HTTP server */
  handOver: (socket: Socket) => void;
  maxHeadBytes: number;
  /** idle keep-alive connections are closed after this */
  keepAliveMs: number;
  /** a reader that takes nothing of a pending answer for this long is dropped */
  stallMs: number;
}

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** conditional and range headers change the answer; each must appear at most once */
const READ = new Set(['range', 'if-none-match', 'if-modified-since', 'if-range']);
/** a request with any of these is not for the front */
const REFUSE = new Set(['content-length', 'transfer-encoding', 'expect', 'upgrade', 'http2-settings']);
const REQUEST_LINE = /^(GET|HEAD) (\/[!-~]*) HTTP\/1\.1$/;
// RFC 9110 §5.1 token, §5.5 field value (visible ASCII, obs-text, spaces and tabs)
const FIELD = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*$/;

/** A request head the front may answer, or undefined for Node to judge. */
export function parseHead(head: string): FrontRequest | undefined {
  const lines = head.split('\r\n');
  const m = REQUEST_LINE.exec(lines[0]!);
  if (!m) return undefined;
  const headers: IncomingHttpHeaders = {};
  for (let i = 1; i < lines.length; i++) {
    const f = FIELD.exec(lines[i]!);
    if (!f) return undefined;
    const name = f[1]!.toLowerCase();
    if (REFUSE.has(name)) return undefined;
    if (name === 'connection') {
      // keep-alive is HTTP/1.1's default; close, upgrade and lists are Node's to handle
      if (f[2]!.toLowerCase() !== 'keep-alive') return undefined;
    } else if (READ.has(name)) {
      if (headers[name] !== undefined) return undefined;
      headers[name] = f[2]!;
    }
  }
  return { method: m[1] as 'GET' | 'HEAD', target: m[2]!, headers };
}

/** `Date` and keep-alive lines, rebuilt once a second like Node's own date cache. */
class HeadTail {
  private second = -1;
  private buf = Buffer.alloc(0);
  constructor(private readonly keepAliveMs: number) {}

  get(): Buffer {
    const now = Date.now();
    const s = Math.floor(now / 1000);
    if (s !== this.second) {
      this.second = s;
      this.buf = Buffer.from(
        `Date: ${new Date(now).toUTCString()}\r\nConnection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(this.keepAliveMs / 1000)}\r\n\r\n`,
        'latin1');
    }
    return this.buf;
  }
}

function headOf(status: number, headers: OutgoingHttpHeaders): Buffer {
  let s = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (const [k, v] of Object.entries(headers)) {
    if (v !== undefined) s += `${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}\r\n`;
  }
  return Buffer.from(s, 'latin1');
}

export class HttpFront {
  private readonly conns = new Set<FrontConnection>();
  readonly tail: HeadTail;
  /** status lines + headers of answers whose header object is reused (a cached file's 200) */
  private readonly heads = new WeakMap<OutgoingHttpHeaders, Buffer>();

  constructor(readonly opts: FrontOptions) {
    this.tail = new HeadTail(opts.keepAliveMs);
  }

  take(socket: Socket): void {
    const c = new FrontConnection(socket, this);
    this.conns.add(c);
  }

  /** Closes connections that wait for a request; busy ones are closed by later calls. */
  closeIdle(): void {
    for (const c of this.conns) c.closeIfIdle();
  }

  forget(c: FrontConnection): void {
    this.conns.delete(c);
  }

  headFor(status: number, headers: OutgoingHttpHeaders): Buffer {
    if (status !== 200) return headOf(status, headers);
    let h = this.heads.get(headers);
    if (!h) { h = headOf(status, headers); this.heads.set(headers, h); }
    return h;
  }
}

class FrontConnection {
  /** bytes received and not yet answered, from the start of the next request */
  private pending: Buffer | undefined;
  private waitingDrain = false;
  private stalled = false;
  private done = false;
  /** the client sent FIN: answer what it asked, then close */
  private readEnded = false;

  constructor(private readonly socket: Socket, private readonly front: HttpFront) {
    for (const [event, fn] of this.listeners()) socket.on(event, fn);
    socket.setNoDelay(true);
    socket.setTimeout(front.opts.keepAliveMs);
  }

  /** the socket events the front listens to, removed as one when Node takes the socket */
  private listeners(): Array<[string, (...args: any[]) => void]> {
    return [['data', this.onData], ['drain', this.onDrain], ['timeout', this.onTimeout],
      ['error', this.onError], ['close', this.onClose], ['end', this.onEnd]];
  }

  closeIfIdle(): void {
    if (!this.done && !this.pending && !this.waitingDrain && this.socket.writableLength === 0) this.socket.destroy();
  }

  private readonly onData = (chunk: Buffer): void => {
    this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    if (this.waitingDrain) {
      // pausing costs two system calls, so only a client that pipelines a lot without reading
      // is paused
      if (this.pending.length > this.front.opts.maxHeadBytes) this.socket.pause();
      return;
    }
    this.work();
  };

  private readonly onDrain = (): void => {
    if (!this.waitingDrain) return;
    this.waitingDrain = false;
    if (this.socket.isPaused()) this.socket.resume();
    this.work();
  };

  private readonly onTimeout = (): void => {
    // nothing moved for keepAliveMs: idle connections go; a slow reader gets stallMs in all
    if (this.socket.writableLength > 0 && !this.stalled) {
      this.stalled = true;
      this.socket.setTimeout(this.front.opts.stallMs);
      return;
    }
    this.socket.destroy();
  };

  private readonly onError = (): void => {
    // a phone that walks out of Wi-Fi range: nothing to report
    this.socket.destroy();
  };

  private readonly onClose = (): void => {
    this.done = true;
    this.front.forget(this);
  };

  private readonly onEnd = (): void => {
    this.readEnded = true;
    if (!this.pending) this.socket.end(); // after the answers already queued
  };

  /** Answers every complete request in `pending`, until one is not the front's. */
  private work(): void {
    const { opts } = this.front;
    while (this.pending && !this.waitingDrain && !this.done) {
      const buf = this.pending;
      const end = buf.indexOf(HEAD_END);
      // a head split across reads is rare (heads are a few hundred bytes): Node's parser takes
      // it, with its own head timeout (408) for clients that send a byte at a time
      if (end < 0) return this.handOver();
      if (end > opts.maxHeadBytes) return this.handOver();
      const req = parseHead(buf.toString('latin1', 0, end));
      const answer = req && opts.answer(req);
      if (!answer) return this.handOver();
      this.pending = end + 4 < buf.length ? buf.subarray(end + 4) : undefined;
      this.write(answer);
    }
    if (!this.pending && this.readEnded && !this.done) this.socket.end();
  }

  private write(a: FrontAnswer): void {
    const s = this.socket;
    const body = a.body === undefined ? undefined : typeof a.body === 'string' ? Buffer.from(a.body) : a.body;
    if (this.stalled) { this.stalled = false; s.setTimeout(this.front.opts.keepAliveMs); }
    s.cork();
    s.write(this.front.headFor(a.status, a.headers));
    let ok = s.write(this.front.tail.get());
    if (body && body.length > 0) {
      const n = body.length;
      ok = s.write(body, (err) => a.sent(err ? 0 : n));
    } else {
      a.sent(0);
    }
    s.uncork();
    // a reader still taking this answer gets no further answers until it has (the next requests
    // wait in `pending`; reading stops only if they pile up, see onData)
    if (!ok) this.waitingDrain = true;
  }

  /** Node's HTTP server takes the connection from here on, starting with the unanswered bytes. */
  private handOver(): void {
    const s = this.socket;
    const rest = this.pending;
    this.pending = undefined;
    this.done = true;
    for (const [event, fn] of this.listeners()) s.removeListener(event, fn);
    s.setTimeout(0);
    this.front.forget(this);
    this.front.opts.handOver(s);
    // in the same tick, before any later bytes can reach Node's parser
    if (rest && rest.length > 0) s.emit('data', rest);
  }
}
