/**
 * The one catalogue of errors a technician or teacher can meet. Every code maps to an
 * exit status for the CLI and an HTTP status for the LAN server (500 when none is named:
 * the message is then logged, not shown). Messages say what happened, where, and what to do.
 */
export interface ErrorSpec {
  exit: number;
  hint: string;
  /** HTTP status when a request fails with this code */
  status?: number;
}

export const ERRORS = {
  YCH_ERR_CONFIG: { exit: 78, hint: 'fix the configuration value named above' },
  YCH_ERR_USAGE: { exit: 64, hint: 'run `yachay --help`' },
  YCH_ERR_INPUT_MISSING: { exit: 66, hint: 'check the path and its permissions' },
  YCH_ERR_INPUT_NOT_MEDIA: { exit: 65, hint: 'give a video or audio file (mp4, mkv, webm, mov, mp3, wav…)' },
  YCH_ERR_INPUT_CORRUPT: { exit: 65, hint: 'the file is damaged or truncated: copy it again from the camera or phone' },
  YCH_ERR_INPUT_EMPTY: { exit: 65, hint: 'the recording has no duration: record again' },
  YCH_ERR_INPUT_TOO_LARGE: { exit: 65, hint: 'export the recording at 8K (7680x4320) or smaller; 1080p is plenty for a lesson' },
  YCH_ERR_OUTPUT_INSIDE_INPUT: { exit: 64, hint: 'choose an output folder outside the input folder' },
  YCH_ERR_OUTPUT_EXISTS: { exit: 73, hint: 'remove the folder or choose another --out' },
  YCH_ERR_DISK_FULL: { exit: 74, hint: 'free disk space (or delete old lessons) and run again' },
  YCH_ERR_IO: { exit: 74, hint: 'check the disk and folder permissions' },
  YCH_ERR_FFMPEG_MISSING: { exit: 69, hint: 'install ffmpeg: `sudo apt-get install -y ffmpeg`' },
  YCH_ERR_FFMPEG_FAILED: { exit: 70, hint: 'run again with --log-level debug and report the ffmpeg message' },
  YCH_ERR_ENCODE_REFUSED: { exit: 70, hint: 'ffmpeg refused the encoding plan; retrying cannot help: report it with the input file and `yachay optimize --plan` output' },
  YCH_ERR_ESPEAK_MISSING: { exit: 69, hint: 'install the speech synthesizer for the sample lecture: `sudo apt-get install -y espeak-ng`' },
  YCH_ERR_NATIVE_LOAD: { exit: 69, hint: 'build the native addon: `npm run build:native`' },
  // not thrown by `optimize` since issue 8: a lesson under its floor is published with its misses
  YCH_ERR_QUALITY_FLOOR: { exit: 70, hint: 'the lesson could not reach its quality floor; report it with the input file' },
  YCH_ERR_ABORTED: { exit: 130, hint: 'the job was stopped; run it again to finish' },
  YCH_ERR_OCR_MISSING: { exit: 69, hint: 'install tesseract with its languages: `sudo apt-get install -y tesseract-ocr tesseract-ocr-spa tesseract-ocr-eng`' },
  YCH_ERR_OCR_FAILED: { exit: 70, hint: 'run again with --log-level debug and report the tesseract message' },
  YCH_ERR_MODEL_MISSING: { exit: 69, hint: 'reinstall the packages (`npm ci`) or restore the file from models/; `yachay models check` lists every model' },
  YCH_ERR_MODEL_CORRUPT: { exit: 69, hint: 'the model file differs from models/manifest.json (sha256): reinstall with `npm ci` or restore it from git' },
  YCH_ERR_MODEL_BACKEND: { exit: 69, hint: 'build the native addon (`npm run build:native`) or reinstall onnxruntime-node (`npm ci`)' },
  YCH_ERR_MODEL_RUN: { exit: 70, hint: 'run `yachay models check` and report its output' },
  // issue 9: packages, the hub, enrollment and sync
  YCH_ERR_PACKAGE_INVALID: { exit: 65, hint: 'the package is incomplete or not a Yachay package: export it again from the hub or another box' },
  YCH_ERR_PACKAGE_SIGNATURE: { exit: 65, hint: 'the lesson manifest is not signed by this box\'s hub: nothing was installed; get the package from the hub again' },
  YCH_ERR_PACKAGE_HASH: { exit: 65, hint: 'a lesson file differs from its signed manifest (damaged or altered): nothing was installed; copy or sync it again' },
  YCH_ERR_ENROLL_CODE: { exit: 77, status: 401, hint: 'the enrollment code is wrong: ask the central team for the school\'s code (`yachay hub enroll SCHOOL`)' },
  YCH_ERR_ENROLL_EXPIRED: { exit: 77, status: 410, hint: 'the enrollment code expired (codes last 7 days): ask the central team for a new one' },
  YCH_ERR_ENROLL_USED: { exit: 77, status: 410, hint: 'the enrollment code was already used by another box: ask the central team for a new one' },
  YCH_ERR_REVOKED: { exit: 77, status: 403, hint: 'the hub revoked this box: ask the central team to enroll the school again' },
  YCH_ERR_HUB_UNREACHABLE: { exit: 69, hint: 'the hub did not answer: check the link; the box keeps its lessons and retries by itself' },
  YCH_ERR_HUB_DATABASE: { exit: 69, hint: 'the hub\'s PostgreSQL did not start or answer: read the log named above (or check --database)' },
  YCH_ERR_HUB_BROKER: { exit: 69, hint: 'the hub\'s Mosquitto did not start or answer: read the log named above (or check --broker)' },
  YCH_ERR_HUB_NOT_RUNNING: { exit: 69, hint: 'start the hub first: `yachay hub start --data-dir DIR`' },
  YCH_ERR_DATABASE: { exit: 76, hint: 'the box\'s database is damaged: stop the box, move the file named above aside, restore the last backup into its place (or start with an empty data dir), and start again' },
  YCH_ERR_MODEL_REJECTED: { exit: 65, hint: 'the new model is not better on held-out data; the active version stays: collect more encodes and train again' },
  // issue 12: espeak-ng's own failure (it used to borrow the ffmpeg code, whose hint names ffmpeg)
  YCH_ERR_ESPEAK_FAILED: { exit: 70, hint: 'run `espeak-ng -v es-419 hola` to see its message; reinstall it with `sudo apt-get install -y --reinstall espeak-ng`' },
  // issue 12: the LAN server's codes (they were a second catalogue in http/routes/common.ts);
  // the page reads `error` (the code) to choose its words, the hint is for a technician
  YCH_HTTP_BAD_REQUEST: { exit: 64, status: 400, hint: 'the request is malformed: reload the page' },
  YCH_HTTP_INTERNAL: { exit: 70, status: 500, hint: 'read the box log (journalctl -u yachay) and report the error' },
  YCH_HTTP_LOGIN_REQUIRED: { exit: 77, status: 401, hint: 'log in on the box\'s page first' },
  YCH_HTTP_FORBIDDEN: { exit: 77, status: 403, hint: 'log in with an account of the role named above (an admin can change roles)' },
  YCH_HTTP_CROSS_ORIGIN: { exit: 77, status: 403, hint: 'open the box\'s own page (http://<box>:8080) and do it from there' },
  YCH_HTTP_BAD_PATH: { exit: 64, status: 400, hint: 'use the links the lesson list gives' },
  YCH_HTTP_NOT_FOUND: { exit: 66, status: 404, hint: 'reload the lesson list: the item may have been removed' },
  YCH_HTTP_DAMAGED: { exit: 74, status: 503, hint: 'a teacher re-encodes the lesson from its page; `yachay catalog verify` lists damaged files' },
  YCH_HTTP_NOT_READY: { exit: 75, status: 409, hint: 'wait for the lesson to be ready (its status is on the page), or upload it again' },
  YCH_HTTP_NO_QUEUE: { exit: 69, status: 503, hint: 'run the box with `yachay start`, which has the job queue' },
  YCH_HTTP_NO_SOURCE: { exit: 66, status: 410, hint: 'upload the recording again' },
  YCH_HTTP_BUSY: { exit: 75, status: 503, hint: 'try again in a few seconds' },
  YCH_HTTP_BAD_LOGIN: { exit: 77, status: 401, hint: 'check the username and password; an admin can reset it with `yachay users passwd`' },
  YCH_HTTP_TOO_MANY_LOGINS: { exit: 75, status: 429, hint: 'wait the seconds named above, then try again' },
  YCH_HTTP_SETUP_DONE: { exit: 73, status: 409, hint: 'log in with the admin account, or ask the admin for one' },
  YCH_HTTP_BAD_SETUP_TOKEN: { exit: 77, status: 401, hint: 'copy the setup token from the box console or the file setup-token in its data folder' },
  YCH_HTTP_USER_EXISTS: { exit: 73, status: 409, hint: 'choose another username' },
  YCH_HTTP_BAD_ACCOUNT: { exit: 64, status: 400, hint: 'fix the username or password as the message says' },
  YCH_HTTP_BAD_HEADER: { exit: 64, status: 400, hint: 'the uploader sent a bad header: reload the page and upload again' },
  YCH_HTTP_TOO_LARGE: { exit: 65, status: 413, hint: 'export a shorter or smaller recording (1080p is plenty), or ask the admin to raise http.maxUploadMB' },
  YCH_HTTP_DISK_FULL: { exit: 74, status: 507, hint: 'free space on the box: delete old lessons or ask the admin' },
  YCH_HTTP_UPLOAD_BUSY: { exit: 75, status: 409, hint: 'the upload continues on its other connection: close the other tab, or wait' },
  YCH_HTTP_STOPPING: { exit: 75, status: 503, hint: 'wait for the box to come back; the upload resumes where it stopped' },
  YCH_HTTP_NOT_MEDIA: { exit: 65, status: 415, hint: 'give a video or audio file (mp4, mov, mkv, webm, avi, wav, ogg, mp3, aac, flac, mpg, ts)' },
  YCH_HTTP_LENGTH_REQUIRED: { exit: 64, status: 411, hint: 'the uploader must send Upload-Length: reload the page and upload again' },
  YCH_HTTP_EMPTY: { exit: 65, status: 400, hint: 'the recording is empty: record again' },
  YCH_HTTP_OFFSET_MISMATCH: { exit: 75, status: 409, hint: 'the uploader resumes from the offset the box names; reload the page if it does not' },
  YCH_HTTP_NOT_ENROLLED: { exit: 78, status: 409, hint: 'enroll the box first: `yachay start --hub URL --enroll CODE`' },
  // issue 12 item 1: lesson management
  YCH_HTTP_BAD_TITLE: { exit: 64, status: 400, hint: 'give the lesson a title of 1 to 200 characters' },
  YCH_HTTP_NOT_FAILED: { exit: 75, status: 409, hint: 'only a lesson whose optimizing failed is retried; a ready lesson can be re-encoded with more quality' },
  // issue 11 item 7: signed releases over the sync channel
  YCH_ERR_UPDATE_SIGNATURE: { exit: 65, hint: 'the release is not signed by this box\'s hub: nothing was installed; publish it again with `yachay hub release`' },
  YCH_ERR_TAR_MISSING: { exit: 69, hint: 'install tar: `sudo apt-get install -y tar`' },
  YCH_ERR_UPDATE_BUNDLE: { exit: 65, hint: 'the release bundle is damaged or not one folder yachay-<version>/ with bin/, daemon/ and VERSION: nothing was switched; build it again (`npm run bundle`) and publish it again' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;
/** The LAN server's own codes (a request failed; nothing on the box is wrong) */
export type HttpCode = Extract<ErrorCode, `YCH_HTTP_${string}`>;

export interface ErrorOptions {
  cause?: unknown;
  /** overrides the catalogue's HTTP status (a code shared by two situations) */
  status?: number | undefined;
  /** response headers that go with the error (retry-after, connection: close…) */
  headers?: Readonly<Record<string, string>> | undefined;
}

export class YachayError extends Error {
  override readonly name: string = 'YachayError';
  /** HTTP status of a request that fails with this error */
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    readonly code: ErrorCode,
    message: string,
    opts: ErrorOptions = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.status = opts.status ?? (ERRORS[code] as ErrorSpec).status ?? 500;
    this.headers = opts.headers ?? {};
  }

  get exitCode(): number {
    return ERRORS[this.code].exit;
  }

  get hint(): string {
    return ERRORS[this.code].hint;
  }
}

export function isYachayError(err: unknown, code?: ErrorCode): err is YachayError {
  return err instanceof YachayError && (code === undefined || err.code === code);
}

/** What a CLI prints for an error that ends it, and the exit status: the code, the message, the hint. */
export function reportError(err: unknown, out: { write(s: string): unknown } = process.stderr): number {
  if (isYachayError(err)) {
    out.write(`yachay: error ${err.code}: ${err.message}\n  → ${err.hint}\n`);
    return err.exitCode;
  }
  out.write(`yachay: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}
