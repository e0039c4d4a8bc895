import { YachayError } from '../errors.js';

/**
 * Just enough ISO-BMFF to splice one of our HLS fMP4 segments: where each sample of a fragment
 * is presented (tfdt + trun), the track's timescale and H.264 parameter sets (the init
 * section's avcC), and moving a fragment on the timeline (tfdt and sidx rewritten in place).
 * Only the boxes ffmpeg's HLS muxer writes for one video track are understood.
 */
interface Box { type: string; start: number; body: number; end: number }

function boxes(buf: Buffer, from = 0, to = buf.length): Box[] {
  const out: Box[] = [];
  let at = from;
  while (at + 8 <= to) {
    let size = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    let body = at + 8;
    if (size === 1) { size = Number(buf.readBigUInt64BE(at + 8)); body = at + 16; } else if (size === 0) size = to - at;
    if (size < body - at || at + size > to) throw bad(`box ${type} at ${at} runs past its parent`);
    out.push({ type, start: at, body, end: at + size });
    at += size;
  }
  return out;
}

function child(buf: Buffer, parent: Box | undefined, type: string, skip = 0): Box | undefined {
  if (!parent) return undefined;
  return boxes(buf, parent.body + skip, parent.end).find((b) => b.type === type);
}

function bad(why: string): YachayError {
  return new YachayError('YCH_ERR_IO', `not a fragment this splice understands: ${why}`);
}

export interface InitInfo {
  timescale: number;
  /** the avcC box body: SPS and PPS every fragment is decoded with */
  avcC: Buffer | undefined;
}

export function readInit(buf: Buffer): InitInfo {
  const moov = boxes(buf).find((b) => b.type === 'moov');
  const trak = child(buf, moov, 'trak');
  const mdia = child(buf, trak, 'mdia');
  const mdhd = child(buf, mdia, 'mdhd');
  if (!mdhd) throw bad('no moov/trak/mdia/mdhd in the init section');
  const version = buf[mdhd.body]!;
  const timescale = buf.readUInt32BE(mdhd.body + 4 + (version === 1 ? 16 : 8));
  const stsd = child(buf, child(buf, child(buf, mdia, 'minf'), 'stbl'), 'stsd');
  // stsd: version/flags + entry count; avc1 is a visual sample entry (78 bytes before its boxes)
  const avc1 = stsd ? boxes(buf, stsd.body + 8, stsd.end).find((b) => b.type === 'avc1') : undefined;
  const avcC = avc1 ? child(buf, avc1, 'avcC', 78) : undefined;
  return { timescale, avcC: avcC ? buf.subarray(avcC.body, avcC.end) : undefined };
}

export interface Sample {
  dts: number; pts: number; duration: number; key: boolean;
  /** file offsets of this sample's duration and composition offset in its trun, when written there */
  durationAt?: number | undefined; ctsAt?: number | undefined; ctsSigned?: boolean | undefined;
}
export interface FragmentInfo {
  sequence: number;
  /** tfdt: decode time of the first sample, in timescale ticks */
  baseDts: number;
  samples: Sample[];
  /** where the fields a move rewrites sit in the file */
  at: { tfdt: number; tfdtVersion: number; mfhd: number; sidx?: { ept: number; version: number } | undefined };
}

/** The one fragment (moof) of a segment file. */
export function readFragment(buf: Buffer): FragmentInfo {
  const top = boxes(buf);
  const moofs = top.filter((b) => b.type === 'moof');
  if (moofs.length !== 1) throw bad(`${moofs.length} moof boxes`);
  const moof = moofs[0]!;
  const mfhd = child(buf, moof, 'mfhd');
  const traf = child(buf, moof, 'traf');
  const tfhd = child(buf, traf, 'tfhd');
  const tfdt = child(buf, traf, 'tfdt');
  if (!mfhd || !traf || !tfhd || !tfdt) throw bad('moof without mfhd/traf/tfhd/tfdt');
  const tfFlags = buf.readUInt32BE(tfhd.body) & 0xffffff;
  let p = tfhd.body + 8;
  if (tfFlags & 0x1) p += 8; // base data offset
  if (tfFlags & 0x2) p += 4; // sample description index
  const defDuration = tfFlags & 0x8 ? buf.readUInt32BE(p) : 0;
  if (tfFlags & 0x8) p += 4;
  if (tfFlags & 0x10) p += 4; // default size
  const defFlags = tfFlags & 0x20 ? buf.readUInt32BE(p) : 0;
  const tfdtVersion = buf[tfdt.body]!;
  const baseDts = tfdtVersion === 1 ? Number(buf.readBigUInt64BE(tfdt.body + 4)) : buf.readUInt32BE(tfdt.body + 4);
  const samples: Sample[] = [];
  let dts = baseDts;
  for (const trun of boxes(buf, traf.body, traf.end).filter((b) => b.type === 'trun')) {
    const vf = buf.readUInt32BE(trun.body);
    const version = vf >>> 24; const flags = vf & 0xffffff;
    const count = buf.readUInt32BE(trun.body + 4);
    let q = trun.body + 8;
    if (flags & 0x1) q += 4; // data offset
    const firstFlags = flags & 0x4 ? buf.readUInt32BE(q) : undefined;
    if (flags & 0x4) q += 4;
    for (let i = 0; i < count; i++) {
      let duration = defDuration; let sflags = i === 0 && firstFlags !== undefined ? firstFlags : defFlags; let cts = 0;
      let durationAt: number | undefined; let ctsAt: number | undefined;
      if (flags & 0x100) { durationAt = q; duration = buf.readUInt32BE(q); q += 4; }
      if (flags & 0x200) q += 4;
      if (flags & 0x400) { sflags = buf.readUInt32BE(q); q += 4; }
      if (flags & 0x800) { ctsAt = q; cts = version === 1 ? buf.readInt32BE(q) : buf.readUInt32BE(q); q += 4; }
      // sample_is_non_sync_sample is bit 16 of the sample flags
      samples.push({ dts, pts: dts + cts, duration, key: (sflags & 0x10000) === 0, durationAt, ctsAt, ctsSigned: version === 1 });
      dts += duration;
    }
  }
  const sidx = top.find((b) => b.type === 'sidx');
  return {
    sequence: buf.readUInt32BE(mfhd.body + 4), baseDts, samples,
    at: { tfdt: tfdt.body + 4, tfdtVersion, mfhd: mfhd.body + 4, sidx: sidx ? { ept: sidx.body + 12, version: buf[sidx.body]! } : undefined },
  };
}

/** Earliest presentation time of a fragment, in ticks (its first sample: our fragments start with a keyframe). */
export function firstPts(f: FragmentInfo): number {
  return Math.min(...f.samples.map((s) => s.pts));
}

/**
 * Moves a fragment by `delta` ticks on the timeline and gives it `sequence`: every sample's
 * decode and presentation time moves with tfdt; the segment index (sidx) says the same.
 */
export function moveFragment(buf: Buffer, delta: number, sequence: number): Buffer {
  const out = Buffer.from(buf);
  const f = readFragment(out);
  const dts = f.baseDts + delta;
  if (dts < 0) throw bad('a move before the start of the timeline');
  if (f.at.tfdtVersion === 1) out.writeBigUInt64BE(BigInt(dts), f.at.tfdt);
  else if (dts <= 0xffffffff) out.writeUInt32BE(dts, f.at.tfdt);
  else throw bad('a 32-bit tfdt cannot hold the new time');
  out.writeUInt32BE(sequence, f.at.mfhd);
  if (f.at.sidx) {
    if (f.at.sidx.version === 1) {
      const ept = Number(out.readBigUInt64BE(f.at.sidx.ept)) + delta;
      out.writeBigUInt64BE(BigInt(Math.max(0, ept)), f.at.sidx.ept);
    } else {
      out.writeUInt32BE(Math.max(0, out.readUInt32BE(f.at.sidx.ept) + delta), f.at.sidx.ept);
    }
  }
  return out;
}

/**
 * Puts a fragment at presentation time `firstPts` (every sample moves by the same amount) with
 * decode times strictly between `after` and `before` (the neighbours' last and first decode
 * times; ffmpeg's MP4 reader drops a sample whose decode time does not increase) and never
 * after a sample's own presentation time. Decode times follow x264's own rule (the presentation
 * times in order, a reorder depth behind), squeezed at the edges only where a neighbour is
 * closer. `keyShownAt` presents the first sample (the keyframe) earlier than the others' shift
 * says, as ffmpeg did in the encode being replaced. Undefined when the samples cannot fit.
 */
export function retimeFragment(buf: Buffer, want: { firstPts: number; sequence: number; after: number; before: number; keyShownAt?: number | undefined }): Buffer | undefined {
  const f = readFragment(buf);
  const n = f.samples.length;
  if (n === 0 || f.samples.some((x) => x.durationAt === undefined || x.ctsAt === undefined)) return undefined;
  const delta = want.firstPts - firstPts(f);
  const pts = f.samples.map((x) => x.pts + delta);
  // the keyframe may be shown earlier than its time, as the encode it replaces showed it
  if (want.keyShownAt !== undefined && want.keyShownAt <= pts[0]! && pts.every((p, i) => i === 0 || p > want.keyShownAt!)) pts[0] = want.keyShownAt;
  const sorted = [...pts].sort((a, b) => a - b);
  let depth = 0;
  while (depth < n && pts.some((p, i) => i >= depth && sorted[i - depth]! > p)) depth++;
  const dts = pts.map((_, i) => (i >= depth ? sorted[i - depth]! : Number.NaN));
  // the first `depth` samples are decoded before the first is shown: spaced like the frames,
  // or closer when the previous segment's last decode time leaves less room
  const natural = n > 1 ? Math.max(1, sorted[1]! - sorted[0]!) : 1;
  const step = Math.max(1, Math.min(natural, Math.floor((sorted[0]! - 1 - want.after) / Math.max(1, depth))));
  for (let i = 0; i < Math.min(depth, n); i++) dts[i] = sorted[0]! - (depth - i) * step;
  for (let i = 1; i < n; i++) if (dts[i]! <= dts[i - 1]!) dts[i] = dts[i - 1]! + 1;
  // squeezed from the end: under the next segment's first decode time
  let next = want.before;
  for (let i = n - 1; i >= 0; i--) { if (dts[i]! >= next) dts[i] = next - 1; next = dts[i]!; }
  if (dts[0]! <= want.after || dts[0]! < 0 || dts.some((d, i) => d > pts[i]!)) return undefined;
  const out = Buffer.from(buf);
  const at = f.at;
  if (at.tfdtVersion === 1) out.writeBigUInt64BE(BigInt(dts[0]!), at.tfdt);
  else if (dts[0]! <= 0xffffffff) out.writeUInt32BE(dts[0]!, at.tfdt);
  else return undefined;
  out.writeUInt32BE(want.sequence, at.mfhd);
  f.samples.forEach((x, i) => {
    if (i + 1 < n) out.writeUInt32BE(dts[i + 1]! - dts[i]!, x.durationAt!);
    const cts = pts[i]! - dts[i]!;
    if (x.ctsSigned) out.writeInt32BE(cts, x.ctsAt!); else out.writeUInt32BE(cts, x.ctsAt!);
  });
  if (at.sidx) {
    // ffmpeg writes the index's earliest time a little before the first frame: kept as it is, moved
    if (at.sidx.version === 1) out.writeBigUInt64BE(BigInt(Math.max(0, Number(out.readBigUInt64BE(at.sidx.ept)) + delta)), at.sidx.ept);
    else out.writeUInt32BE(Math.max(0, out.readUInt32BE(at.sidx.ept) + delta), at.sidx.ept);
  }
  return out;
}

/**
 * The same fragment with a duration written for every sample: ffmpeg leaves them out when a
 * fragment runs at one steady rate (tfhd's default), and a retimed fragment needs its own.
 * The trun grows by 4 bytes a sample; the boxes around it, the trun's data offset and the
 * segment index's size grow with it.
 */
export function withSampleDurations(buf: Buffer): Buffer {
  const f = readFragment(buf);
  if (f.samples.every((x) => x.durationAt !== undefined)) return buf;
  const top = boxes(buf);
  const moof = top.find((b) => b.type === 'moof')!;
  const traf = child(buf, moof, 'traf')!;
  const runs = boxes(buf, traf.body, traf.end).filter((b) => b.type === 'trun');
  if (runs.length !== 1) throw bad(`${runs.length} trun boxes`);
  const trun = runs[0]!;
  const vf = buf.readUInt32BE(trun.body);
  const flags = vf & 0xffffff;
  const count = buf.readUInt32BE(trun.body + 4);
  const head = 8 + (flags & 0x1 ? 4 : 0) + (flags & 0x4 ? 4 : 0);
  const per = ((flags & 0x100 ? 1 : 0) + (flags & 0x200 ? 1 : 0) + (flags & 0x400 ? 1 : 0) + (flags & 0x800 ? 1 : 0)) * 4;
  const parts: Buffer[] = [Buffer.alloc(8), buf.subarray(trun.body, trun.body + head)];
  let q = trun.body + head;
  for (let i = 0; i < count; i++) {
    const d = Buffer.alloc(4); d.writeUInt32BE(f.samples[i]!.duration);
    parts.push(d, buf.subarray(q, q + per));
    q += per;
  }
  const body = Buffer.concat(parts);
  body.writeUInt32BE(body.length, 0); body.write('trun', 4, 'latin1');
  body.writeUInt32BE(((vf >>> 24) << 24) | flags | 0x100, 8);
  const grow = body.length - (trun.end - trun.start);
  if (flags & 0x1) body.writeInt32BE(buf.readInt32BE(trun.body + 8) + grow, 16);
  const out = Buffer.concat([buf.subarray(0, trun.start), body, buf.subarray(trun.end)]);
  // every box that holds the trun is `grow` bytes longer (none uses 64-bit sizes here)
  for (const b of [moof, traf]) out.writeUInt32BE(buf.readUInt32BE(b.start) + grow, b.start);
  const sidx = top.find((b) => b.type === 'sidx');
  if (sidx && sidx.start < moof.start) {
    const v = buf[sidx.body]!;
    const refAt = sidx.body + 12 + (v === 1 ? 16 : 8) + 4;
    if (buf.readUInt16BE(refAt - 2) === 1) {
      const ref = out.readUInt32BE(refAt);
      out.writeUInt32BE(((ref & 0x80000000) | ((ref & 0x7fffffff) + grow)) >>> 0, refAt);
    }
  }
  return out;
}
