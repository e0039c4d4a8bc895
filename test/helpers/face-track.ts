import { FAST_DECODE } from '../../daemon/optimize/analyse.js';
import { rawFrames, run } from '../../daemon/media/run.js';
import { probe, type MediaInfo } from '../../daemon/optimize/probe.js';
import { faceTap, type DecodeOptions, type FaceFrame } from '../../daemon/models/face.js';
import type { InferenceSession } from '../../daemon/models/runtime.js';

/**
 * Faces over a whole clip from a decode of its own, as the box did before it took the frames
 * from its analysis decode: the reference the analysis tap is compared with, and a short way
 * to track faces in a test clip.
 */
export async function faceTrack(session: InferenceSession, path: string,
  opts: DecodeOptions & { fps?: number; info?: MediaInfo } = {}): Promise<FaceFrame[]> {
  const faces = faceTap(session, opts.info ?? await probe(path), opts);
  const { fps, filters, frameBytes, onFrame } = faces.tap;
  await run('ffmpeg', ['-nostdin', '-v', 'error', ...FAST_DECODE, '-i', path, '-sn', '-vf', `fps=${fps},${filters}`,
    '-f', 'rawvideo', 'pipe:1'], { onStdout: rawFrames(frameBytes, (i, frame) => onFrame(i / fps, frame, 0)) });
  return faces.done();
}
