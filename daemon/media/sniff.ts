import { open } from 'node:fs/promises';

/**
 * The one answer to "does this file start like a recording?", for the teacher's upload
 * (routes/uploads.ts: refuse with 415 before anything is queued) and for `yachay optimize`
 * (optimize/probe.ts: a file ffprobe cannot read is "damaged" when it starts like media, "not
 * media" otherwise). One list, so an upload is never refused for a file optimize handles.
 *
 * It reads signatures only; ffprobe decides whether the file really plays. The extension it
 * returns names the file in sources/ (ffmpeg probes content, not names).
 */

/** enough for three MPEG-TS packets (3 × 188) and an M2TS one (192 + 4) */
export const SNIFF_BYTES = 1024;

const QUICKTIME_ATOMS = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot']);

function at(b: Buffer, from: number, to: number): string {
  return b.subarray(from, to).toString('latin1');
}

/** MPEG transport stream: a 0x47 sync byte every `size` bytes, three packets in a row */
function transportStream(b: Buffer, size: number, offset: number): boolean {
  if (b.length < offset + 2 * size + 1) return false;
  return b[offset] === 0x47 && b[offset + size] === 0x47 && b[offset + 2 * size] === 0x47;
}

/** The container a file starts with, as a file extension, or undefined when it is not media. */
export function sniffContainer(b: Buffer): string | undefined {
  if (b.length >= 8 && QUICKTIME_ATOMS.has(at(b, 4, 8))) {
    // an atom's size is 0 (to the end), 1 (64-bit size follows) or at least its 8-byte header
    const size = b.readUInt32BE(0);
    if (size === 0 || size === 1 || size >= 8) {
      if (at(b, 4, 8) !== 'ftyp') return 'mov';
      return b.length >= 10 && at(b, 8, 10) === 'qt' ? 'mov' : 'mp4';
    }
  }
  if (b.length >= 4 && b.readUInt32BE(0) === 0x1a45dfa3) return b.includes('webm') ? 'webm' : 'mkv';
  if (b.length >= 12 && (at(b, 0, 4) === 'RIFF' || at(b, 0, 4) === 'RF64') && at(b, 8, 12) === 'WAVE') return 'wav';
  if (b.length >= 12 && at(b, 0, 4) === 'RIFF' && at(b, 8, 12) === 'AVI ') return 'avi';
  if (b.length >= 12 && at(b, 0, 4) === 'FORM' && (at(b, 8, 12) === 'AIFF' || at(b, 8, 12) === 'AIFC')) return 'aiff';
  if (at(b, 0, 4) === 'OggS') return 'ogg';
  if (at(b, 0, 4) === 'fLaC') return 'flac';
  if (at(b, 0, 4) === 'caff') return 'caf';
  if (at(b, 0, 5) === '#!AMR') return 'amr';
  if (at(b, 0, 3) === 'FLV' && b[3] === 1) return 'flv';
  // ASF (wma, wmv): its header object's GUID
  if (b.length >= 8 && b.readUInt32BE(0) === 0x3026b275 && b.readUInt32BE(4) === 0x8e66cf11) return 'asf';
  if (at(b, 0, 3) === 'ID3') return 'mp3';
  if (at(b, 0, 9) === 'YUV4MPEG2') return 'y4m';
  // MXF (broadcast cameras): the SMPTE universal label its header partition starts with
  if (b.length >= 4 && b.readUInt32BE(0) === 0x060e2b34) return 'mxf';
  // MPEG program stream (pack header), or an MPEG-1/2 video elementary stream (sequence header)
  if (b.length >= 4 && b[0] === 0 && b[1] === 0 && b[2] === 1 && (b[3] === 0xba || b[3] === 0xb3)) return 'mpg';
  if (transportStream(b, 188, 0)) return 'ts';
  if (transportStream(b, 192, 4)) return 'm2ts';
  if (b.length >= 2 && b[0] === 0xff) {
    // ADTS AAC: 12 sync bits, then layer 00 (FFF1 MPEG-4, FFF9 MPEG-2; FFF0/FFF8 with a CRC)
    if ((b[1]! & 0xf6) === 0xf0) return 'aac';
    // an MPEG audio frame header: 11 sync bits, then layer III
    if ((b[1]! & 0xe6) === 0xe2) return 'mp3';
  }
  return undefined;
}

/** The first SNIFF_BYTES of a file, sniffed. */
export async function sniffFile(path: string): Promise<string | undefined> {
  const fh = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await fh.read(Buffer.alloc(SNIFF_BYTES), 0, SNIFF_BYTES, 0);
    return sniffContainer(buffer.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** what the 415 and the CLI say a teacher may give */
export const MEDIA_KINDS = 'mp4, mov, mkv, webm, avi, wav, ogg, mp3, aac, flac, mpg, ts';
