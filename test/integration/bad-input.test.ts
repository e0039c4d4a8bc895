import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { makeClip, ffmpeg } from '../helpers/media.js';
import { ROOT, yachay } from '../helpers/cli.js';

// Each bad input gets its own clear error and exit code, and nothing is left half written.
// --no-verify keeps these fast: the floors are tested in optimize.test.ts.
const FAST = ['--no-verify', '--quiet', '--preset', 'ultrafast'];

function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.includes('.tmp-') || n.includes('.old-'));
}

t.test('a text file is refused as not media (65)', async (t) => {
  const dir = t.testdir({ 'notes.mp4': 'these are my notes, not a video\n'.repeat(50) });
  const r = await yachay(['optimize', join(dir, 'notes.mp4'), '--out', join(dir, 'out'), ...FAST]);
  t.equal(r.code, 65);
  t.match(r.stderr, /YCH_ERR_INPUT_NOT_MEDIA/);
  t.match(r.stderr, /notes\.mp4/);
  t.notOk(existsSync(join(dir, 'out')));
  t.same(leftovers(dir), []);
});

t.test('a truncated recording is refused as damaged (65)', async (t) => {
  const dir = t.testdir();
  const clip = makeClip(dir, 'cut', { seconds: 3 });
  truncateSync(clip, Math.floor(statSync(clip).size / 2)); // moov atom at the end is lost
  const r = await yachay(['optimize', clip, '--out', join(dir, 'out'), ...FAST]);
  t.equal(r.code, 65);
  t.match(r.stderr, /YCH_ERR_INPUT_CORRUPT.*damaged or truncated/);
  t.notOk(existsSync(join(dir, 'out')));
});

t.test('an empty file and a too-short clip are refused (65)', async (t) => {
  const dir = t.testdir({ 'empty.mp4': '' });
  const r1 = await yachay(['optimize', join(dir, 'empty.mp4'), '--out', join(dir, 'o1'), ...FAST]);
  t.equal(r1.code, 65);
  t.match(r1.stderr, /YCH_ERR_INPUT_EMPTY.*0 bytes/);
  const short = makeClip(dir, 'short', { seconds: 0.2 });
  const r2 = await yachay(['optimize', short, '--out', join(dir, 'o2'), ...FAST]);
  t.equal(r2.code, 65);
  t.match(r2.stderr, /too short/);
});

t.test('a missing path, and a folder given as input, are refused', async (t) => {
  const dir = t.testdir({ folder: {} });
  const r1 = await yachay(['optimize', join(dir, 'nope.mp4'), '--out', join(dir, 'o'), ...FAST]);
  t.equal(r1.code, 66);
  t.match(r1.stderr, /nope\.mp4 does not exist/);
  const r2 = await yachay(['optimize', join(dir, 'folder'), '--out', join(dir, 'o'), ...FAST]);
  t.equal(r2.code, 65);
  t.match(r2.stderr, /is a folder/);
});

t.test('output inside the input, or input inside the output, is refused (64)', async (t) => {
  const dir = t.testdir({ lessons: {} });
  const clip = makeClip(join(dir, 'lessons'), 'clase', { seconds: 2 });
  const r1 = await yachay(['optimize', clip, '--out', join(dir, 'lessons'), ...FAST]);
  t.equal(r1.code, 64);
  t.match(r1.stderr, /YCH_ERR_OUTPUT_INSIDE_INPUT/);
  const r2 = await yachay(['optimize', join(dir, 'lessons'), '--out', join(dir, 'lessons', 'out'), ...FAST]);
  t.equal(r2.code, 64);
  t.ok(existsSync(clip), 'the recording is untouched');
});

t.test('an output folder holding other files is not overwritten (73)', async (t) => {
  const dir = t.testdir({ out: { 'tarea.docx': 'homework' } });
  const clip = makeClip(dir, 'clase', { seconds: 2 });
  const r = await yachay(['optimize', clip, '--out', join(dir, 'out'), ...FAST]);
  t.equal(r.code, 73);
  t.equal(readFileSync(join(dir, 'out', 'tarea.docx'), 'utf8'), 'homework');
});

t.test('audio only: an audio-only package', async (t) => {
  const dir = t.testdir();
  const clip = makeClip(dir, 'radio', { seconds: 3, video: false, ext: 'm4a' });
  const r = await yachay(['optimize', clip, '--out', join(dir, 'out'), ...FAST]);
  t.equal(r.code, 0, r.stderr);
  const master = readFileSync(join(dir, 'out', 'master.m3u8'), 'utf8');
  t.match(master, /CODECS="opus"/);
  t.notMatch(master, /RESOLUTION=/);
  t.ok(existsSync(join(dir, 'out', 'a-opus', 'index.m3u8')));
});

t.test('video without audio: video renditions, no audio group', async (t) => {
  const dir = t.testdir();
  const clip = makeClip(dir, 'mudo', { seconds: 3, audio: false });
  const r = await yachay(['optimize', clip, '--out', join(dir, 'out'), ...FAST]);
  t.equal(r.code, 0, r.stderr);
  const master = readFileSync(join(dir, 'out', 'master.m3u8'), 'utf8');
  t.match(master, /RESOLUTION=640x360/);
  t.notMatch(master, /TYPE=AUDIO/);
});

t.test('odd-sized frames come out even-sized', async (t) => {
  const dir = t.testdir();
  const clip = join(dir, 'odd.mkv');
  // ffv1 keeps odd sizes (x264 4:2:0 cannot)
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=s=640x360:r=30:d=2', '-vf', 'scale=641:361', '-c:v', 'ffv1', clip]);
  const r = await yachay(['optimize', clip, '--out', join(dir, 'out'), ...FAST]);
  t.equal(r.code, 0, r.stderr);
  t.match(readFileSync(join(dir, 'out', 'master.m3u8'), 'utf8'), /RESOLUTION=642x362/);
});

t.test('8K is scaled down; beyond 8K is refused (65)', async (t) => {
  const dir = t.testdir();
  const big = join(dir, 'big8k.mkv');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=s=7680x4320:r=2:d=2', '-f', 'lavfi', '-i', 'sine=d=2', '-c:v', 'mjpeg', '-q:v', '20', '-c:a', 'aac', '-shortest', big]);
  const r = await yachay(['optimize', big, '--out', join(dir, 'out'), ...FAST]);
  t.equal(r.code, 0, r.stderr);
  t.match(readFileSync(join(dir, 'out', 'master.m3u8'), 'utf8'), /RESOLUTION=1280x720/);
  const huge = join(dir, 'huge.mkv');
  ffmpeg(['-f', 'lavfi', '-i', 'color=s=9000x5000:r=1:d=1', '-c:v', 'mjpeg', '-q:v', '20', huge]);
  const r2 = await yachay(['optimize', huge, '--out', join(dir, 'out2'), ...FAST]);
  t.equal(r2.code, 65);
  t.match(r2.stderr, /9000x5000, larger than 8K/);
});

t.test('variable frame rate and a rotated phone video', async (t) => {
  const dir = t.testdir();
  const vfr = makeClip(dir, 'vfr', { seconds: 3, vfr: true });
  const r1 = await yachay(['optimize', vfr, '--out', join(dir, 'o1'), ...FAST]);
  t.equal(r1.code, 0, r1.stderr);
  const rot = makeClip(dir, 'phone', { seconds: 2, width: 640, height: 360, rotate: 90 });
  const r2 = await yachay(['optimize', rot, '--out', join(dir, 'o2'), ...FAST]);
  t.equal(r2.code, 0, r2.stderr);
  t.match(readFileSync(join(dir, 'o2', 'master.m3u8'), 'utf8'), /RESOLUTION=360x640/, 'portrait stays portrait');
});

// a 150 KB filesystem, in a private mount namespace so nothing leaks if the test dies
const prefix = process.getuid?.() === 0 ? ['unshare', '-m'] : ['unshare', '-rm'];
const canMount = spawnSync(prefix[0]!, [...prefix.slice(1), 'true']).status === 0;

t.test('disk full: clear error, nothing half written', { skip: canMount ? false : 'no mount namespace here' }, async (t) => {
  const dir = t.testdir({ small: {} });
  const clip = makeClip(dir, 'clase', { seconds: 4, width: 1280, height: 720 });
  const small = join(dir, 'small');
  const res = spawnSync(prefix[0]!, [...prefix.slice(1), 'sh', '-c',
    `mount -t tmpfs -o size=150k tmpfs '${small}' && "${process.execPath}" bin/yachay.mjs optimize '${clip}' --out '${join(small, 'out')}' ${FAST.join(' ')}; rc=$?; ls -A '${small}'; exit $rc`],
  { encoding: 'utf8', cwd: ROOT });
  t.equal(res.status, 74, res.stderr);
  t.match(res.stderr, /YCH_ERR_DISK_FULL/);
  t.equal(res.stdout.trim(), '', 'no temp folder or partial package left on the full disk');
});
