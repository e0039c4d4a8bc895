import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDb } from '../../daemon/db/db.js';
import { Users } from '../../daemon/users/users.js';
import { buildApp } from '../../daemon/http/server.js';
import { SNIFF_BYTES, sniffContainer } from '../../daemon/media/sniff.js';
import { probe } from '../../daemon/optimize/probe.js';
import { isYachayError } from '../../daemon/errors.js';
import { ffmpeg } from '../helpers/media.js';

// Issue 12 item 2: one sniffer for the upload and for `yachay optimize`. Every file here is made
// by ffmpeg in the test (some then re-laid out the way older cameras and phones write them);
// each must pass the upload's check and be read by optimize's probe (real ffprobe).

const PASSWORD = 'correct horse battery';

/** QuickTime without its ftyp atom, as older cameras write it: starts with `first` */
function quicktimeStartingWith(mov: string, out: string, first: 'wide' | 'mdat' | 'free' | 'skip'): string {
  const b = readFileSync(mov);
  if (b.toString('latin1', 4, 8) !== 'ftyp') throw new Error('ffmpeg wrote no ftyp first');
  let rest = b.subarray(b.readUInt32BE(0)); // drop ftyp: the file now starts with its 8-byte wide atom
  if (rest.toString('latin1', 4, 8) !== 'wide') throw new Error('ffmpeg wrote no wide atom after ftyp');
  if (first === 'mdat') rest = rest.subarray(8);
  else if (first !== 'wide') { rest = Buffer.from(rest); rest.write(first, 4, 'latin1'); }
  writeFileSync(out, rest);
  return out;
}

/** ADTS frames turned into MPEG-2 AAC (FFF9): the ID bit of every frame header set */
function adtsMpeg2(aac: string, out: string): string {
  const b = Buffer.from(readFileSync(aac));
  for (let i = 0; i + 7 <= b.length;) {
    if (b[i] !== 0xff || (b[i + 1]! & 0xf6) !== 0xf0) throw new Error(`no ADTS header at ${i}`);
    b[i + 1] = b[i + 1]! | 0x08;
    i += ((b[i + 3]! & 0x03) << 11) | (b[i + 4]! << 3) | (b[i + 5]! >> 5);
  }
  writeFileSync(out, b);
  return out;
}

t.test('every container optimize reads passes the upload; text and images do not', async (t) => {
  const dir = t.testdir();
  const v = ['-f', 'lavfi', '-i', 'testsrc2=s=160x90:r=10:d=2'];
  const a = ['-f', 'lavfi', '-i', 'sine=f=440:r=48000:d=2'];
  const make = (name: string, args: string[]): string => { const p = join(dir, name); ffmpeg([...args, p]); return p; };
  const mov = make('cam.mov', [...v, ...a, '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-shortest']);
  const aac = make('voz.aac', [...a, '-c:a', 'aac', '-f', 'adts']);
  const files: Array<[string, string]> = [
    [make('phone.mp4', [...v, ...a, '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-shortest']), 'mp4'],
    [mov, 'mov'],
    [quicktimeStartingWith(mov, join(dir, 'wide.mov'), 'wide'), 'mov'],
    [quicktimeStartingWith(mov, join(dir, 'mdat.mov'), 'mdat'), 'mov'],
    [quicktimeStartingWith(mov, join(dir, 'free.mov'), 'free'), 'mov'],
    [quicktimeStartingWith(mov, join(dir, 'skip.mov'), 'skip'), 'mov'],
    [make('dvd.mpg', [...v, ...a, '-c:v', 'mpeg2video', '-c:a', 'mp2', '-f', 'vob', '-shortest']), 'mpg'],
    [make('tv.ts', [...v, ...a, '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-f', 'mpegts', '-shortest']), 'ts'],
    [aac, 'aac'],
    [adtsMpeg2(aac, join(dir, 'voz2.aac')), 'aac'],
    [make('clase.mkv', [...v, ...a, '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-shortest']), 'mkv'],
    [make('clase.webm', [...v, ...a, '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-c:a', 'libopus', '-shortest']), 'webm'],
    [make('clase.avi', [...v, ...a, '-c:v', 'mpeg4', '-c:a', 'mp3', '-shortest']), 'avi'],
    [make('voz.wav', a), 'wav'],
    [make('voz.ogg', [...a, '-c:a', 'libopus']), 'ogg'],
    [make('voz.flac', a), 'flac'],
    [make('voz.mp3', [...a, '-c:a', 'libmp3lame']), 'mp3'],
    [make('raw.mp3', [...a, '-c:a', 'libmp3lame', '-write_id3v2', '0', '-f', 'mp3']), 'mp3'],
    [make('cam.flv', [...v, ...a, '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', '-shortest']), 'flv'],
    [make('win.wmv', [...v, ...a, '-c:v', 'wmv2', '-c:a', 'wmav2', '-shortest']), 'asf'],
  ];
  const text = join(dir, 'notas.mp4'); writeFileSync(text, 'Esto no es un video, son mis notas de clase.\n'.repeat(40));
  const png = make('foto.png', ['-f', 'lavfi', '-i', 'testsrc2=s=160x90', '-frames:v', '1']);

  // the upload, on a real server
  const db = openDb(join(dir, 'y.db'));
  t.teardown(() => db.close());
  const users = new Users(db);
  await users.add('maestra', PASSWORD, 'teacher');
  const stored: string[] = [];
  const app = await buildApp({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 20, loginAttemptsPerMinute: 100, studentsNeedLogin: false },
    log: pino({ level: 'silent' }), db, store: join(dir, 'store'), lessons: { list: () => [], get: () => undefined }, users,
    health: () => ({}), onUpload: async (f) => { stored.push(f.path); return { lessonId: `l${stored.length}` }; },
  });
  t.teardown(() => app.close());
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const login = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'maestra', password: PASSWORD, bearer: true }) });
  const auth = { authorization: `Bearer ${((await login.json()) as { token: string }).token}` };
  const upload = async (file: string): Promise<number> => {
    const body = readFileSync(file);
    const r = await fetch(`${url}/api/uploads?title=x`, { method: 'POST', headers: { ...auth, 'upload-length': String(body.length) }, body });
    await r.arrayBuffer();
    return r.status;
  };

  for (const [file, ext] of files) {
    const name = file.slice(dir.length + 1);
    t.equal(sniffContainer(readFileSync(file).subarray(0, SNIFF_BYTES)), ext, `${name}: sniffed as ${ext}`);
    t.equal(await upload(file), 201, `${name}: the upload takes it`);
    t.ok(stored.at(-1)!.endsWith(`.${ext}`), `${name}: kept in sources/ as .${ext}`);
    const info = await probe(file);
    t.ok(info.duration > 1.5, `${name}: optimize's probe reads it (${info.duration.toFixed(2)} s)`);
  }
  for (const file of [text, png]) {
    const name = file.slice(dir.length + 1);
    t.equal(sniffContainer(readFileSync(file).subarray(0, SNIFF_BYTES)), undefined, `${name}: not media`);
    t.equal(await upload(file), 415, `${name}: the upload refuses it`);
    const err = await probe(file).then(() => undefined, (e: unknown) => e);
    t.ok(isYachayError(err, 'YCH_ERR_INPUT_NOT_MEDIA'), `${name}: optimize refuses it as not media`);
  }
  // a recording cut off before its index: damaged, not "not media" (the sniffer tells them apart)
  const cut = join(dir, 'cortado.mov'); writeFileSync(cut, readFileSync(join(dir, 'mdat.mov')).subarray(0, 3000));
  const err = await probe(cut).then(() => undefined, (e: unknown) => e);
  t.ok(isYachayError(err, 'YCH_ERR_INPUT_CORRUPT'), 'a truncated QuickTime file is damaged');
});
