import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { BrokerService } from '../../daemon/broker/broker.js';
import { Lessons } from '../../daemon/catalog/lessons.js';
import { openDb } from '../../daemon/db/db.js';
import { registerPlayer } from '../../daemon/http/player.js';
import { buildApp } from '../../daemon/http/server.js';
import { makeSampleLecture } from '../../daemon/sample/lecture.js';
import { Users } from '../../daemon/users/users.js';
import { SetupToken } from '../../daemon/users/setup-token.js';
import { yachay } from '../helpers/cli.js';

// The web player end to end: a lesson packaged by the project's own optimizer, published in a
// real SQLite catalog, served by the real LAN server, played by Debian's Chromium.

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
const SCHOOL = 'escuela-demo';
const LESSON = 'la-celula-1';
const TITLE = 'La célula: partes y funciones';
const PASSWORD = 'correct horse battery';

interface Summary { duration_s: number; renditions: Array<{ id: string; kbps: number; bytes: number }> }

/** the page's own rounding (js/dom.js mb()) */
function mb(bytes: number): string {
  const v = bytes / 1e6;
  return `${v < 1 ? v.toFixed(2) : v.toFixed(1)} MB`;
}

async function mediaTime(page: Page, sel: string): Promise<number> {
  return page.$eval(sel, (m) => (m as HTMLMediaElement).currentTime);
}

// a developer without Chromium may skip it; CI installs it, so there a missing Chromium fails
if (!existsSync(CHROMIUM) && process.env.CI) throw new Error(`${CHROMIUM} is missing under CI: setup-dev.sh installs the chromium package`);
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: apt-get install -y chromium`;

t.test('student plays a lesson, switches to audio only, saves it for offline; a teacher push opens it', { skip }, async (t) => {
  const dir = t.testdir();
  const store = join(dir, 'store');
  mkdirSync(store, { recursive: true });

  // 1. a real package: ~8 s lecture (slide + talking head), optimized by the CLI
  const clip = join(dir, 'clase.mp4');
  await makeSampleLecture(clip, { seconds: 8, lang: 'es', kinds: ['slide', 'talking_head'] });
  const opt = await yachay(['optimize', clip, '--out', join(store, LESSON), '--no-verify', '--preset', 'ultrafast']);
  t.equal(opt.code, 0, opt.stderr);
  const summary = JSON.parse(opt.stdout) as Summary;

  // 2. catalog row, teacher account, broker, LAN server with the player
  // closed in reverse order of opening, browser first, so nothing writes into the testdir
  // while tap removes it
  // Each step gets a deadline and names itself: a CI run once hung 10 minutes in teardown after
  // every assertion had passed, and nothing said which part would not close.
  const closers: Array<[string, () => unknown]> = [];
  t.teardown(async () => {
    for (const [name, close] of closers.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((r) => { timer = setTimeout(() => r('late'), 20_000); });
      const how = await Promise.race([Promise.resolve(close()).then(() => 'ok' as const), late]).finally(() => clearTimeout(timer));
      if (how === 'late') {
        console.error(`e2e teardown: ${name} did not close within 20 s`);
        if (name === 'chromium') spawnSync('pkill', ['-KILL', '-f', profile]);
      }
    }
  });
  const db = openDb(join(dir, 'yachay.db'));
  closers.push(['database', () => db.close()]);
  const lessons = new Lessons(db);
  lessons.create({ id: LESSON, title: TITLE });
  lessons.markReady(LESSON, {
    durationS: summary.duration_s, path: LESSON, report: null,
    renditions: summary.renditions.map((r) => ({ ...r, playlist: `${r.id}/index.m3u8` })),
  });
  const users = new Users(db);
  await users.add('maestra', PASSWORD, 'teacher');
  // no admin yet: the box has a one-time setup code (step 11)
  const setup = await SetupToken.forBox(users, join(dir, 'setup-token'));
  const log = pino({ level: 'silent' });

  const broker = new BrokerService({
    cfg: { host: '127.0.0.1', port: 0, wsPort: 0 }, school: SCHOOL, users, dir: join(dir, 'broker'), log,
  });
  await broker.start();
  closers.push(['broker', () => broker.stop()]);

  const app = await buildApp({
    cfg: { host: '127.0.0.1', port: 0, maxUploadMB: 50, loginAttemptsPerMinute: 5, studentsNeedLogin: false },
    log, db, store, lessons, users, health: () => ({ db: true }), setup,
    onUpload: async () => ({ lessonId: 'subida-1' }),
    // the page's routes as the edge wires them: /api/session says who the cookie is and gives a
    // teacher a short-lived MQTT credential (the page keeps no password)
    plugins: [(f, { sessions }) => registerPlayer(f, {
      school: SCHOOL, mqttWsPort: broker.ports.ws, studentToken: () => broker.issueStudentToken(),
      user: (req) => {
        const u = sessions.of(req)?.user;
        if (!u) return undefined;
        return { username: u.username, role: u.role, mqtt: u.role === 'teacher' || u.role === 'admin' ? broker.issueUserToken(u) : null };
      },
    })],
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  // the browser's keep-alive sockets must not hold the close open
  closers.push(['http', () => { app.server.closeAllConnections(); return app.close(); }]);
  const addr = app.server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;

  // 3. the browser
  const profile = join(dir, 'chromium-profile');
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 412, height: 860 },
  });
  closers.push(['chromium', () => context.close()]);
  // what the browser asked the box for: the context's events include the service worker's
  // fetches (the server cannot see them all: files in memory are answered before Fastify)
  const requested: string[] = [];
  context.on('request', (r) => { if (r.url().startsWith(base)) requested.push(new URL(r.url()).pathname); });
  const page = context.pages()[0] ?? await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  // while the network is cut on purpose, failed loads are expected console noise
  let offline = false;
  page.on('console', (msg) => { if (msg.type() === 'error' && !offline) problems.push(`console: ${msg.text()}`); });

  // the list shows each lesson's data cost before anything plays
  const v0 = summary.renditions.find((r) => r.id === 'v0')!;
  const opus = summary.renditions.find((r) => r.id === 'a-opus')!;
  await page.goto(base + '/');
  const item = page.locator(`.lessons a[data-id="${LESSON}"]`);
  await item.waitFor({ timeout: 10_000 });
  const text = await item.innerText();
  t.match(text, TITLE);
  t.match(text, `${mb(v0.bytes + opus.bytes)} ahorro`, 'data-saver MB = v0 + Opus');
  t.match(text, `${mb(opus.bytes)} solo audio`, 'audio-only MB');
  t.notOk(requested.some((p) => p.startsWith('/media/')), 'no media fetched by the list');

  await page.fill('#q', 'zzz');
  await page.locator('#list-status', { hasText: 'Nada encontrado' }).waitFor();
  await page.fill('#q', 'celula');
  await item.waitFor();

  // 4. open, choose "Calidad", play (muted): time advances, the top rendition is fetched
  await item.click();
  await page.locator('#player-view').waitFor({ state: 'visible' });
  t.match(await page.innerText('#lesson-cost'), mb(v0.bytes + opus.bytes));
  // single files for the phone's own player, with their size, over plain http too
  const fileLink = page.locator('#file-video');
  await fileLink.waitFor({ state: 'visible', timeout: 10_000 });
  const videoFile = statSync(join(store, LESSON, 'download', 'leccion.mp4')).size;
  t.match(await fileLink.innerText(), mb(videoFile), 'the video file shows its size');
  // a file name keeps the title without the characters phones refuse (here the colon)
  t.equal(await fileLink.getAttribute('download'), 'La célula partes y funciones.mp4', 'saved under the lesson title');
  const got = await page.evaluate(async (href) => {
    const r = await fetch(href!);
    return { status: r.status, type: r.headers.get('content-type'), bytes: (await r.arrayBuffer()).byteLength };
  }, await fileLink.getAttribute('href'));
  t.same(got, { status: 200, type: 'video/mp4', bytes: videoFile });
  t.ok(await page.locator('#file-audio').isVisible(), 'and the audio-only file');
  await page.selectOption('#quality', 'high');
  await page.$eval('#video', (v) => { const m = v as HTMLVideoElement; m.muted = true; m.play().catch(() => {}); });
  await page.waitForFunction(() => (document.getElementById('video') as HTMLVideoElement).currentTime > 2, undefined, { timeout: 30_000 });
  t.ok(await mediaTime(page, '#video') > 2, 'video played past 2 s');
  t.ok(requested.includes(`/media/${LESSON}/v1/index.m3u8`), 'Calidad loads the v1 rendition');
  t.ok(requested.some((p) => /^\/media\/[^/]+\/a-(opus|aac)\/.+\.m4s$/.test(p)), 'an audio group is fetched with the video');

  const shot = join(dir, 'player-video.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.ok(statSync(shot).size > 10_000, `screenshot ${statSync(shot).size} bytes`);
  t.same([...readFileSync(shot).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');

  // 5. "solo audio": the <audio> element takes over at the same point and advances
  const before = requested.length;
  await page.check('#audio-only');
  await page.locator('#audio-box').waitFor({ state: 'visible' });
  await page.waitForFunction(() => {
    const a = document.getElementById('audio') as HTMLAudioElement;
    return !a.paused && a.currentTime > 0;
  }, undefined, { timeout: 15_000 });
  const a0 = await mediaTime(page, '#audio');
  t.ok(a0 > 1.5, `audio starts where the video was (${a0.toFixed(2)} s)`);
  await page.waitForFunction((from) => (document.getElementById('audio') as HTMLAudioElement).currentTime > from + 1, a0, { timeout: 15_000 });
  t.ok(await page.$eval('#video', (v) => (v as HTMLVideoElement).paused), 'video stopped');
  const after = requested.slice(before).filter((p) => p.startsWith('/media/'));
  // Opus is the smallest audio; when Chromium's demuxer refuses it the page falls back to AAC
  const opusRejected = await page.evaluate(() => localStorage.getItem('yachay.opusRejected') === '1');
  // the optimizer codes Opus from 48 kHz: a 16 kHz OpusSpecificBox next to a 48 kHz sample
  // entry made Chromium refuse the audio
  t.ok(!opusRejected, 'Chromium accepts the optimizer\'s Opus fMP4');
  const audioId = opusRejected ? 'a-aac' : 'a-opus';
  t.ok(after.includes(`/media/${LESSON}/${audioId}/index.m3u8`), `audio-only playlist (${audioId}) loaded`);
  t.notOk(after.some((p) => /\/v[01]\//.test(p)), 'no video fetched in audio-only mode');
  await page.screenshot({ path: join(dir, 'player-audio.png'), fullPage: true });
  await page.uncheck('#audio-only');

  // 6. download for later, then play with the network gone
  await page.click('#download');
  await page.locator('#download-status', { hasText: 'Guardada' }).waitFor({ timeout: 20_000 });
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null, undefined, { timeout: 10_000 });
  offline = true;
  await context.setOffline(true);
  await page.goto(base + '/#/');
  await page.reload(); // the page itself now comes from the service worker's copy
  await page.locator('#net').waitFor({ state: 'visible' });
  const savedItem = page.locator(`.lessons a[data-id="${LESSON}"]`);
  await savedItem.waitFor({ timeout: 10_000 }).catch(async (err: Error) => {
    t.comment(await page.content());
    throw err;
  });
  t.match(await savedItem.innerText(), 'descargada', 'offline list shows the saved lesson');
  await savedItem.click();
  await page.locator('#player-view').waitFor({ state: 'visible' });
  t.equal(await page.inputValue('#quality'), 'low', 'a saved lesson plays its saved rendition');
  await page.$eval('#video', (v) => { const m = v as HTMLVideoElement; m.muted = true; m.play().catch(() => {}); });
  await page.waitForFunction(() => (document.getElementById('video') as HTMLVideoElement).currentTime > 2, undefined, { timeout: 30_000 });
  t.pass('the saved lesson plays offline');
  await page.screenshot({ path: join(dir, 'player-offline.png'), fullPage: true });
  await context.setOffline(false);

  // 7. a teacher pushes a lesson to the class: the open page goes to it
  await page.goto(base + '/#/');
  await page.reload();
  offline = false;
  await item.waitFor();
  // "En clase" shows once the page's MQTT client has its subscription
  await page.locator('#live').waitFor({ state: 'visible', timeout: 10_000 });
  await broker.publish(`yachay/${SCHOOL}/class/aula-1`, JSON.stringify({ lessonId: LESSON }));
  await page.waitForFunction((id) => location.hash === `#/l/${id}`, LESSON, { timeout: 10_000 });
  await page.locator('#lesson-title', { hasText: TITLE }).waitFor();
  t.pass('class push opened the lesson');

  // 8. teacher corner: log in, upload a file with progress
  await page.goto(base + '/#/docente');
  await page.fill('#login input[name=username]', 'maestra');
  await page.fill('#login input[name=password]', PASSWORD);
  await page.click('#login button');
  await page.locator('#upload').waitFor({ state: 'visible' });
  await page.fill('#upload input[name=title]', 'Mi clase');
  await page.setInputFiles('#upload input[name=file]', clip);
  await page.click('#upload button');
  await page.locator('#upload-status', { hasText: 'Subida completa' }).waitFor({ timeout: 20_000 });
  t.match(await page.innerText('#upload-status'), 'subida-1');
  t.equal(await page.$eval('#upload-progress', (p) => (p as HTMLProgressElement).value), 1);

  // 9. the teacher's live panel: the box's job events (as the worker publishes them) show up
  await page.locator('#jobs').waitFor({ state: 'visible', timeout: 10_000 });
  const jobTopic = `yachay/${SCHOOL}/jobs/subida-1`;
  await broker.publish(jobTopic, JSON.stringify({ type: 'job', id: 7, kind: 'optimize', state: 'leased', progress: 0.42, stage: 'encode', lessonId: 'subida-1' }));
  const job = page.locator('#job-list li[data-lesson="subida-1"]');
  await job.locator('.job-state', { hasText: 'encode · 42 %' }).waitFor({ timeout: 10_000 });
  t.equal(await job.locator('progress').evaluate((p) => (p as HTMLProgressElement).value), 0.42, 'panel shows the job\'s progress');
  await broker.publish(jobTopic, JSON.stringify({ type: 'job', id: 7, kind: 'optimize', state: 'done', lessonId: 'subida-1' }));
  await job.locator('.job-state', { hasText: 'Lista' }).waitFor({ timeout: 10_000 });
  t.pass('a done job reads "Lista"');

  // 10. a student's page follows the class; the teacher opens the lesson and pushes it
  const student = await context.newPage();
  student.on('pageerror', (err) => problems.push(`student pageerror: ${err.message}`));
  student.on('console', (msg) => { if (msg.type() === 'error') problems.push(`student console: ${msg.text()}`); });
  await student.goto(base + '/#/');
  await student.locator('#live').waitFor({ state: 'visible', timeout: 10_000 });
  t.notOk(await student.locator('#push').isVisible(), 'no push button without a teacher login');
  await page.click('#teacher-view a.back');
  await item.click();
  await page.locator('#lesson-title', { hasText: TITLE }).waitFor();
  await page.locator('#push').waitFor({ state: 'visible', timeout: 10_000 });
  t.equal(await page.inputValue('#push input[name=room]'), 'aula-1', 'room defaults to aula-1');
  await page.click('#push button');
  await page.locator('#push-status', { hasText: 'aula-1' }).waitFor({ timeout: 10_000 });
  await student.waitForFunction((id) => location.hash === `#/l/${id}`, LESSON, { timeout: 10_000 });
  await student.locator('#lesson-title', { hasText: TITLE }).waitFor();
  t.pass('the teacher\'s push opened the lesson on the student\'s page');
  // the password is nowhere in the page's storage (page.test.ts searches its memory too)
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  t.notMatch(stored, PASSWORD, 'password not stored');
  await student.close();

  // the session is the browser's cookie, so every tab shares it: the teacher logs out
  await page.goto(base + '/#/docente');
  await page.click('#logout');
  await page.locator('#login').waitFor({ state: 'visible' });
  t.equal((await context.cookies(base)).filter((c) => c.httpOnly && c.value).length, 0, 'logging out clears the session cookie');

  // 11. first setup: the link the box prints creates the admin, who then gives a teacher an account
  const admin = await context.newPage();
  admin.on('pageerror', (err) => problems.push(`admin pageerror: ${err.message}`));
  await admin.goto(base + '/#/docente');
  await admin.locator('#setup-hint').waitFor({ state: 'visible', timeout: 10_000 });
  t.pass('the teacher corner points to the first setup while there is no admin');
  await admin.goto(`${base}/#/setup/${setup.token}`);
  t.equal(await admin.inputValue('#setup input[name=token]'), setup.token, 'the code comes from the link');
  await admin.fill('#setup input[name=username]', 'directora');
  await admin.fill('#setup input[name=password]', 'una clave larga 123');
  await admin.fill('#setup input[name=password2]', 'una clave larga 123');
  await admin.click('#setup button');
  await admin.locator('#add-user').waitFor({ state: 'visible', timeout: 10_000 });
  t.equal(new URL(admin.url()).hash, '#/docente', 'the code leaves the address bar');
  t.equal(users.get('directora')?.role, 'admin');
  await admin.fill('#add-user input[name=username]', 'prof.quispe');
  await admin.fill('#add-user input[name=password]', 'clave de docente 1');
  await admin.click('#add-user button');
  await admin.locator('#user-list li', { hasText: 'prof.quispe' }).waitFor({ timeout: 10_000 });
  t.equal(users.get('prof.quispe')?.role, 'teacher', 'the admin made a teacher account from the page');
  await admin.close();

  t.same(problems, [], 'no page errors');
});
