import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpConfig } from '../../config/schema.js';
import { type Sessions } from './common.js';
import { YachayError } from '../../errors.js';
import { MEDIA_KINDS, SNIFF_BYTES, sniffContainer } from '../../media/sniff.js';
import { isDiskFull } from '../../util/atomic.js';

/**
 * Teacher uploads, resumable in the spirit of tus (https://tus.io/protocols/resumable-upload),
 * kept to three requests:
 *
 *   POST  /api/uploads?title=…   Upload-Length: <total> (or just Content-Length for a one-shot
 *                                upload); the body, possibly empty, is the first bytes.
 *                                → 201 { id, offset, length, complete } + Location + Upload-Offset
 *   HEAD  /api/uploads/:id       → 200, Upload-Offset: bytes on disk, Upload-Length: total
 *   PATCH /api/uploads/:id       Upload-Offset: <must equal the bytes on disk, else 409>; the body
 *                                is appended → 200 { … } (same shape as POST)
 *
 * Bytes go to uploads/<id>.part (metadata beside it in <id>.json, so an upload survives a
 * restart). When the offset reaches Upload-Length the first bytes must look like a media
 * container (else 415 and both files are removed), the file is fsync'd, renamed into
 * sources/<id>.<ext> and onUpload is called; its lessonId is in the answer.
 *
 * Limits: Upload-Length above cfg.maxUploadMB, or a body that runs past Upload-Length / the
 * limit, is a 413 with `Connection: close` (so the rest is not read) and the upload is removed.
 * A dropped connection keeps what arrived: the client asks HEAD and PATCHes from there.
 * A full disk (ENOSPC/EDQUOT) is a 507 with `Connection: close` and the upload is removed.
 * Only the teacher who started an upload (or an admin) may see or continue it.
 */

const ROLES = ['teacher', 'admin'] as const;
const ID = /^[a-f0-9]{32}$/;

export interface UploadedFile { path: string; title: string; by: string }

export interface UploadOptions {
  cfg: HttpConfig;
  uploads: string;
  sources: string;
  sessions: Sessions;
  onUpload?: ((file: UploadedFile) => Promise<{ lessonId: string }>) | undefined;
}

interface UploadMeta { id: string; length: number; title: string; by: string; createdAt: number }

class TooLarge extends Error {}

function intHeader(req: FastifyRequest, name: string): number | undefined {
  const v = req.headers[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d{1,15}$/.test(v)) throw new YachayError('YCH_HTTP_BAD_HEADER', `${name} must be a whole number of bytes`);
  return Number(v);
}

function tooLarge(msg: string): YachayError {
  return new YachayError('YCH_HTTP_TOO_LARGE', msg, { headers: { connection: 'close' } });
}

function diskFull(): YachayError {
  return new YachayError('YCH_HTTP_DISK_FULL', 'the box has no room left for this recording; delete old lessons or ask the admin', { headers: { connection: 'close' } });
}

class Stopping extends Error {
  constructor() { super('the box is stopping'); }
}

export async function uploadRoutes(app: FastifyInstance, opts: UploadOptions): Promise<void> {
  const maxBytes = opts.cfg.maxUploadMB * 1024 * 1024;
  const busy = new Set<string>();
  /**
   * Uploads still receiving. When the box stops, each is parked at once (its bytes so far kept
   * in .part, resumable) instead of holding the stop open while the database closes under it.
   */
  const receiving = new Set<Transform>();
  let stopping = false;
  app.addHook('preClose', async () => {
    stopping = true;
    for (const l of receiving) l.destroy(new Stopping());
  });
  const part = (id: string): string => join(opts.uploads, `${id}.part`);
  const metaFile = (id: string): string => join(opts.uploads, `${id}.json`);

  // the body is the file: hand the raw stream to the handler instead of parsing it
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));

  async function remove(id: string): Promise<void> {
    await rm(part(id), { force: true });
    await rm(metaFile(id), { force: true });
  }

  async function load(req: FastifyRequest): Promise<UploadMeta> {
    const user = opts.sessions.require(req, ROLES);
    const id = (req.params as { id: string }).id;
    if (!ID.test(id)) throw new YachayError('YCH_HTTP_NOT_FOUND', 'no such upload');
    let meta: UploadMeta;
    try {
      meta = JSON.parse(await readFile(metaFile(id), 'utf8')) as UploadMeta;
    } catch {
      throw new YachayError('YCH_HTTP_NOT_FOUND', 'no such upload');
    }
    if (meta.by !== user.username && user.role !== 'admin') throw new YachayError('YCH_HTTP_FORBIDDEN', 'this upload belongs to another teacher');
    return meta;
  }

  const offsetOf = async (id: string): Promise<number> => (await stat(part(id))).size;

  /** Appends the request body at `offset`; answers with the new state or the finished upload. */
  async function receive(req: FastifyRequest, reply: FastifyReply, meta: UploadMeta, offset: number, created: boolean): Promise<unknown> {
    if (busy.has(meta.id)) throw new YachayError('YCH_HTTP_UPLOAD_BUSY', 'this upload is receiving on another connection');
    busy.add(meta.id);
    try {
      const room = meta.length - offset;
      const declared = intHeader(req, 'content-length');
      if (declared !== undefined && declared > room) {
        await remove(meta.id);
        throw tooLarge(`body of ${declared} bytes runs past Upload-Length (${room} bytes left)`);
      }
      let seen = 0;
      const limiter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          seen += chunk.length;
          cb(seen > room ? new TooLarge() : null, chunk);
        },
      });
      // pipe(), not pipeline(), for the request: on a 413 the socket must stay up long enough
      // to carry the answer; a client that goes away ends the pipeline through these listeners
      const src = req.raw;
      const onGone = (): void => { if (!src.complete) limiter.destroy(new Error('client went away')); };
      src.once('error', onGone).once('close', onGone);
      if (stopping) throw new Stopping();
      src.pipe(limiter);
      receiving.add(limiter);
      try {
        await pipeline(limiter, createWriteStream(part(meta.id), { flags: 'a' }));
      } catch (err) {
        src.unpipe(limiter);
        if (err instanceof TooLarge) {
          await remove(meta.id);
          throw tooLarge(`upload runs past its Upload-Length of ${meta.length} bytes`);
        }
        if (isDiskFull(err)) {
          // a half-written file would keep the disk full for every later upload
          await remove(meta.id);
          req.log.warn({ upload: meta.id, err: (err as Error).message }, 'upload refused, disk full');
          throw diskFull();
        }
        req.log.info({ upload: meta.id, err: (err as Error).message }, 'upload interrupted, resumable');
        if (err instanceof Stopping) {
          const kept = await offsetOf(meta.id);
          throw new YachayError('YCH_HTTP_STOPPING', `la caja se está reiniciando: la subida sigue desde el byte ${kept} cuando vuelva / the box is restarting: the upload resumes from byte ${kept}`, { headers: { 'upload-offset': String(kept), 'retry-after': '30', location: `/api/uploads/${meta.id}`, connection: 'close' } });
        }
        throw err;
      } finally {
        receiving.delete(limiter);
        src.off('error', onGone).off('close', onGone);
      }
      const now = await offsetOf(meta.id);
      const state = { id: meta.id, offset: now, length: meta.length, complete: now === meta.length };
      reply.header('upload-offset', String(now)).header('upload-length', String(meta.length))
        .header('location', `/api/uploads/${meta.id}`).header('cache-control', 'no-store');
      if (!state.complete) return reply.code(created ? 201 : 200).send(state);
      const lessonId = await finish(req, meta);
      return reply.code(created ? 201 : 200).send({ ...state, lessonId });
    } finally {
      busy.delete(meta.id);
    }
  }

  async function finish(req: FastifyRequest, meta: UploadMeta): Promise<string | undefined> {
    const fh = await open(part(meta.id), 'r+');
    let ext: string | undefined;
    try {
      const head = Buffer.alloc(SNIFF_BYTES);
      const { bytesRead } = await fh.read(head, 0, SNIFF_BYTES, 0);
      ext = sniffContainer(head.subarray(0, bytesRead));
      if (ext) await fh.sync();
    } finally {
      await fh.close();
    }
    if (!ext) {
      await remove(meta.id);
      throw new YachayError('YCH_HTTP_NOT_MEDIA', `this is not a video or audio file (${MEDIA_KINDS})`);
    }
    await mkdir(opts.sources, { recursive: true });
    const dest = join(opts.sources, `${meta.id}.${ext}`);
    await rename(part(meta.id), dest);
    // the rename is durable only once the folder itself is synced
    const dir = await open(opts.sources, 'r');
    try { await dir.sync(); } finally { await dir.close(); }
    await rm(metaFile(meta.id), { force: true });
    req.log.info({ upload: meta.id, by: meta.by, bytes: meta.length, ext }, 'upload complete');
    if (!opts.onUpload) return undefined;
    return (await opts.onUpload({ path: dest, title: meta.title, by: meta.by })).lessonId;
  }

  app.post('/api/uploads', async (req, reply) => {
    const user = opts.sessions.require(req, ROLES);
    const length = intHeader(req, 'upload-length') ?? intHeader(req, 'content-length');
    if (length === undefined) throw new YachayError('YCH_HTTP_LENGTH_REQUIRED', 'send Upload-Length (or Content-Length) with the total size', { headers: { connection: 'close' } });
    if (length > maxBytes) throw tooLarge(`recording of ${length} bytes is over the ${opts.cfg.maxUploadMB} MB limit`);
    if (length === 0) throw new YachayError('YCH_HTTP_EMPTY', 'the recording is empty');
    const q = req.query as { title?: unknown };
    const title = typeof q.title === 'string' && q.title.trim() ? q.title.trim().slice(0, 200) : `Grabación ${new Date().toISOString().slice(0, 16).replace('T', ' ')}`;
    const meta: UploadMeta = { id: randomBytes(16).toString('hex'), length, title, by: user.username, createdAt: Date.now() };
    await mkdir(opts.uploads, { recursive: true });
    try {
      await writeFile(part(meta.id), Buffer.alloc(0), { flag: 'wx' });
      await writeFile(metaFile(meta.id), JSON.stringify(meta));
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      await remove(meta.id);
      throw diskFull();
    }
    return receive(req, reply, meta, 0, true);
  });

  app.head('/api/uploads/:id', async (req, reply) => {
    const meta = await load(req);
    const offset = await offsetOf(meta.id);
    return reply.header('upload-offset', String(offset)).header('upload-length', String(meta.length))
      .header('cache-control', 'no-store').send();
  });

  app.patch('/api/uploads/:id', async (req, reply) => {
    const meta = await load(req);
    const at = intHeader(req, 'upload-offset');
    if (at === undefined) throw new YachayError('YCH_HTTP_BAD_HEADER', 'Upload-Offset is required');
    const offset = await offsetOf(meta.id);
    if (at !== offset) {
      throw new YachayError('YCH_HTTP_OFFSET_MISMATCH', `Upload-Offset ${at} does not match the ${offset} bytes received`, { headers: { 'upload-offset': String(offset) } });
    }
    return receive(req, reply, meta, offset, false);
  });
}
