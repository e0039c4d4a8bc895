import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { ocrFrame } from '../../daemon/quality/ocr.js';
import { speak } from '../../daemon/sample/lecture.js';
import { killAllChildren, run } from '../../daemon/media/run.js';

// issue 12 item 6: tesseract and espeak-ng run like ffmpeg: own process group, stopped by an
// abort, by the second Ctrl-C (killAllChildren) and by the box dying with kill -9

const OCR = fileURLToPath(new URL('../../daemon/quality/ocr.ts', import.meta.url));
const LECTURE = fileURLToPath(new URL('../../daemon/sample/lecture.ts', import.meta.url));

/** pids of `tool` whose arguments contain `token` (a path unique to this test), read from /proc */
function running(tool: string, token: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try { argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    if (basename(argv[0] ?? '') === tool && argv.some((a) => a.includes(token))) out.push(Number(name));
  }
  return out;
}

function groupOf(pid: number): number {
  // field 5 of /proc/PID/stat, counted after the command name in parentheses
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

async function until(what: () => boolean, ms: number): Promise<boolean> {
  const t0 = Date.now();
  while (!what()) {
    if (Date.now() - t0 > ms) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** A page of noise tesseract needs seconds for, and a text espeak-ng needs seconds to say. */
function fixtures(dir: string): { png: string; wav: string; token: string; text: string } {
  const token = `yachay-abort-${randomBytes(4).toString('hex')}`;
  const png = join(dir, `${token}.png`);
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=gray:s=3000x3000,noise=alls=100:allf=u,format=gray',
    '-frames:v', '1', png]);
  if (r.status !== 0) throw new Error(`ffmpeg could not make the page: ${r.stderr}`);
  const words = ['hola', 'clase', 'escuela', 'lección', 'docente', 'estudiante', 'matemática', 'lectura'];
  const text = Array.from({ length: 9000 }, (_, i) => words[(i * 7) % words.length]).join(' ');
  return { png, wav: join(dir, `${token}.wav`), token, text };
}

t.test('an abort stops tesseract and espeak-ng, each the leader of its own process group', async (t) => {
  const f = fixtures(t.testdir());
  for (const [tool, start] of [
    ['tesseract', (s: AbortSignal): Promise<unknown> => ocrFrame(f.png, 'spa+eng', s)],
    ['espeak-ng', (s: AbortSignal): Promise<unknown> => speak(f.text, 'es', f.wav, s)],
  ] as const) {
    const ac = new AbortController();
    const job = start(ac.signal);
    job.catch(() => {});
    t.ok(await until(() => running(tool, f.token).length > 0, 5000), `${tool} started`);
    const [pid] = running(tool, f.token);
    t.equal(groupOf(pid!), pid, `${tool} leads its own process group (pid ${pid})`);
    ac.abort();
    await t.rejects(job, { code: 'YCH_ERR_ABORTED' }, `${tool} reports the abort`);
    t.ok(await until(() => running(tool, f.token).length === 0, 3000), `no ${tool} left after the abort`);
  }
});

t.test('the second Ctrl-C (killAllChildren) stops a running tesseract and espeak-ng', async (t) => {
  const f = fixtures(t.testdir());
  const ocr = ocrFrame(f.png, 'spa+eng');
  const talk = speak(f.text, 'es', f.wav);
  ocr.catch(() => {}); talk.catch(() => {});
  t.ok(await until(() => running('tesseract', f.token).length > 0 && running('espeak-ng', f.token).length > 0, 5000),
    'both run');
  killAllChildren();
  await t.rejects(ocr, { code: 'YCH_ERR_OCR_FAILED', message: /SIGKILL/ }, 'OCR ends with the kill');
  await t.rejects(talk, { code: 'YCH_ERR_ESPEAK_FAILED', message: /SIGKILL/ }, 'espeak-ng ends with the kill');
  t.same(running('tesseract', f.token), []);
  t.same(running('espeak-ng', f.token), []);
});

t.test('tesseract and espeak-ng die with a box killed by SIGKILL', { skip: process.platform !== 'linux' }, async (t) => {
  const f = fixtures(t.testdir());
  const script = `import { ocrFrame } from ${JSON.stringify(OCR)};
    import { speak } from ${JSON.stringify(LECTURE)};
    ocrFrame(${JSON.stringify(f.png)}, 'spa+eng').catch(() => {});
    speak(${JSON.stringify(f.text.slice(0, 200))} + ' ' + ${JSON.stringify(f.text)}, 'es', ${JSON.stringify(f.wav)}).catch(() => {});
    setInterval(() => {}, 1000);`;
  const box = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'ignore' });
  t.teardown(() => { box.kill('SIGKILL'); });
  const both = await until(() => running('tesseract', f.token).length > 0 && running('espeak-ng', f.token).length > 0, 15_000);
  t.ok(both, 'tesseract and espeak-ng run under the box');
  box.kill('SIGKILL');
  const t0 = Date.now();
  t.ok(await until(() => running('tesseract', f.token).length === 0 && running('espeak-ng', f.token).length === 0, 5000),
    `both gone ${Date.now() - t0} ms after the box`);
});

t.test('a reader that throws ends the run with its own error and the tool stopped', async (t) => {
  const token = `reader-${randomBytes(4).toString('hex')}`;
  // an endless stream of frames: only the reader's failure can end this run
  const job = run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=64x36:rate=30,drawtext=text=${token}:fontsize=1`,
    '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'], {
    onStdout: () => { throw new Error('the model could not read this frame'); },
  });
  await t.rejects(job, /the model could not read this frame/, "the reader's error, not a tool failure");
  t.same(running('ffmpeg', token), [], 'ffmpeg stopped');
});
