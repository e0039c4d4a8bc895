/**
 * The one catalogue of errors a technician or teacher can meet. Every code maps to an
 * exit status for the CLI, and (later) to an HTTP status for the LAN server.
 * Messages say what happened, where, and what to do.
 */
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
  YCH_ERR_ENROLL_CODE: { exit: 77, hint: 'the enrollment code is wrong: ask the central team for the school\'s code (`yachay hub enroll SCHOOL`)' },
  YCH_ERR_ENROLL_EXPIRED: { exit: 77, hint: 'the enrollment code expired (codes last 7 days): ask the central team for a new one' },
  YCH_ERR_ENROLL_USED: { exit: 77, hint: 'the enrollment code was already used by another box: ask the central team for a new one' },
  YCH_ERR_REVOKED: { exit: 77, hint: 'the hub revoked this box: ask the central team to enroll the school again' },
  YCH_ERR_HUB_UNREACHABLE: { exit: 69, hint: 'the hub did not answer: check the link; the box keeps its lessons and retries by itself' },
  YCH_ERR_HUB_DATABASE: { exit: 69, hint: 'the hub\'s PostgreSQL did not start or answer: read the log named above (or check --database)' },
  YCH_ERR_HUB_BROKER: { exit: 69, hint: 'the hub\'s Mosquitto did not start or answer: read the log named above (or check --broker)' },
  YCH_ERR_HUB_NOT_RUNNING: { exit: 69, hint: 'start the hub first: `yachay hub start --data-dir DIR`' },
  YCH_ERR_DATABASE: { exit: 76, hint: 'the box\'s database is damaged: stop the box, move the file named above aside, restore the last backup into its place (or start with an empty data dir), and start again' },
  YCH_ERR_MODEL_REJECTED: { exit: 65, hint: 'the new model is not better on held-out data; the active version stays: collect more encodes and train again' },
  // issue 11 item 7: signed releases over the sync channel
  YCH_ERR_UPDATE_SIGNATURE: { exit: 65, hint: 'the release is not signed by this box\'s hub: nothing was installed; publish it again with `yachay hub release`' },
  YCH_ERR_UPDATE_BUNDLE: { exit: 65, hint: 'the release bundle is damaged or not one folder yachay-<version>/ with bin/, daemon/ and VERSION: nothing was switched; build it again (`npm run bundle`) and publish it again' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class YachayError extends Error {
  override readonly name = 'YachayError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    opts: { cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
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
