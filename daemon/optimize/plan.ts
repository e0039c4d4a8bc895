import type { MediaInfo } from './probe.js';
import type { AudioKind, Shot, ShotClass } from './shots.js';

/**
 * The plan is data: what each rendition does with each shot. It is printed by `--plan`,
 * stored beside the package (plan.json), and tested without encoding anything.
 */
export interface ShotSettings {
  /** output frames per second for this shot */
  fps: number;
  /** x264 quantiser for this shot (constant QP through rate-control zones) */
  qp: number;
}

export interface ShotPlan {
  index: number;
  start: number;
  end: number;
  cls: ShotClass;
  audio: AudioKind;
  /** why the settings are what they are, for the plan printout */
  reason: string;
  /**
   * Talking-head shots where the face model found the teacher: the face and the region below
   * it, normalised to the frame. The encoder spends its bits there first.
   */
  roi?: { x: number; y: number; w: number; h: number } | undefined;
}

export interface RenditionPlan {
  id: string;
  label: string;
  /**
   * 'max': the lowest rendition, whose bytes every student pays, gets x264's slow motion search;
   * 'fast': higher renditions are coded with the veryfast preset (they cost the box time, the
   * network only when the Wi-Fi has room).
   */
  effort: 'max' | 'fast';
  width: number;
  height: number;
  /** per shot, same order as Plan.shots */
  shots: ShotSettings[];
}

export interface AudioPlan {
  mode: 'speech' | 'music';
  opus: { bitrate: number; application: 'voip' | 'audio'; sampleRate: number; frameMs: number };
  aac: { bitrate: number; sampleRate: number };
  /**
   * Stretches (s) coded as digital silence: pauses the speech model found, quiet all through.
   * Absent in the rules-only plan.
   */
  gate?: Array<{ start: number; end: number }> | undefined;
}

export interface Plan {
  version: 1;
  input: string;
  duration: number;
  /** frame rate the source is normalised to before per-shot selection */
  baseFps: number;
  segmentSeconds: number;
  shots: ShotPlan[];
  /** forced keyframe times (s): shot starts, plus every segment in moving shots */
  keyframes: number[];
  renditions: RenditionPlan[];
  audio?: AudioPlan | undefined;
}

/**
 * Per class: [lowest rendition, higher rendition]. Text needs pixels, not frames; faces need
 * frames. Constant QP rather than CRF: with CRF, x264's macroblock tree spends many bits on the
 * keyframe of a long static GOP (every later frame references it), which doubled the bytes of
 * slide shots on generated lectures for no gain in OCR. Frame rates divide 30 so the picked
 * frames are evenly spaced.
 */
export const CLASS_SETTINGS: Record<ShotClass, [ShotSettings, ShotSettings]> = {
  slide: [{ fps: 1, qp: 31 }, { fps: 2, qp: 27 }],
  board: [{ fps: 3, qp: 32 }, { fps: 6, qp: 28 }],
  talking_head: [{ fps: 15, qp: 37 }, { fps: 30, qp: 31 }],
  motion: [{ fps: 6, qp: 39 }, { fps: 15, qp: 34 }],
};

const REASONS: Record<ShotClass, string> = {
  slide: 'static text: full resolution, 1 keyframe per slide, almost no frames',
  board: 'writing appears slowly: full resolution, few frames per second',
  talking_head: 'a face needs motion more than pixels: moderate frame rate',
  motion: 'moving picture: fewer frames, coarser quantiser, judder accepted',
};

/**
 * Opus (Chrome, Firefox, Android) and an AAC twin for Safari/iOS, which cannot play Opus in HLS.
 * Speech: Opus voice mode at 11 kb/s with 60 ms frames kept STOI 0.966–0.968 on the three bench
 * lectures by the referee (12 kb/s: 0.971–0.974; 10 kb/s: 0.960; 40 or 20 ms frames cost more
 * bytes for the same score); AAC needs 20 kb/s for the same. The margin is thin, so a lesson
 * whose speech misses its floor goes back to SPEECH_SAFE_BITRATE first (optimizer.nextAttempt).
 */
export const SPEECH_SAFE_BITRATE = 12000;
export const AUDIO_SETTINGS: Record<'speech' | 'music', AudioPlan> = {
  speech: {
    // 48 kHz in, although speech needs 16: Chrome refuses fMP4 Opus whose header says 16 kHz
    // (OpusSpecificBox vs sample entry mismatch), and Opus codes the same bits either way
    mode: 'speech', opus: { bitrate: 11000, application: 'voip', sampleRate: 48000, frameMs: 60 },
    aac: { bitrate: 20000, sampleRate: 16000 },
  },
  music: {
    mode: 'music', opus: { bitrate: 24000, application: 'audio', sampleRate: 48000, frameMs: 20 },
    aac: { bitrate: 48000, sampleRate: 44100 },
  },
};

/** Largest output size: 720 lines keep 22 px slide footnotes readable; portrait phones stay portrait. */
export const MAX_LONG = 1280;
export const MAX_SHORT = 720;

export function outputSize(w: number, h: number): { width: number; height: number } {
  const landscape = w >= h;
  const boxW = landscape ? MAX_LONG : MAX_SHORT;
  const boxH = landscape ? MAX_SHORT : MAX_LONG;
  const scale = Math.min(1, boxW / w, boxH / h);
  const even = (x: number): number => Math.max(2, 2 * Math.round((x * scale) / 2));
  return { width: even(w), height: even(h) };
}

export interface PlanOptions { segmentSeconds: number }

/** the frame grid every rendition is cut on: the source's own rate, at most 30 */
export function baseFpsOf(info: MediaInfo): number {
  return info.video ? Math.min(30, Math.max(1, Math.round(info.video.fps))) : 0;
}

export function makePlan(info: MediaInfo, shots: Shot[], opts: PlanOptions): Plan {
  const shotPlans: ShotPlan[] = shots.map((s) => ({
    index: s.index, start: round3(s.start), end: round3(s.end), cls: s.cls, audio: s.audio.kind, reason: REASONS[s.cls],
  }));
  let renditions: RenditionPlan[] = [];
  let keyframes: number[] = [];
  const baseFps = baseFpsOf(info);
  if (info.video) {
    const size = outputSize(info.video.displayWidth, info.video.displayHeight);
    renditions = [0, 1].map((r) => ({
      id: `v${r}`,
      label: r === 0 ? 'ahorro / data saver' : 'calidad / quality',
      effort: r === 0 ? 'max' as const : 'fast' as const,
      width: size.width,
      height: size.height,
      shots: shots.map((s) => {
        const base = CLASS_SETTINGS[s.cls][r as 0 | 1];
        // never ask for more frames than the source has
        return { fps: Math.min(base.fps, baseFps), qp: base.qp };
      }),
    }));
    keyframes = keyframeTimes(shotPlans, opts.segmentSeconds);
  }
  const audioKind = lessonAudio(shots);
  return {
    version: 1,
    input: info.path,
    duration: round3(info.duration),
    baseFps,
    segmentSeconds: opts.segmentSeconds,
    shots: shotPlans,
    keyframes,
    renditions,
    audio: info.audio ? AUDIO_SETTINGS[audioKind] : undefined,
  };
}

/**
 * With the speech model's count (seconds of speech it heard, `speechSec`), the lesson is speech
 * when speech fills at least SPEECH_SHARE of the time that is not silent: a narration with
 * music under it is still a narration. The energy heuristic called real recorded voices music
 * (their level swings less than espeak's), so it only decides when the model did not run:
 * music over more than a quarter of the sound → the whole track is coded as music.
 */
export const SPEECH_SHARE = 0.5;
export function lessonAudio(shots: Shot[], speechSec?: number): 'speech' | 'music' {
  let speech = 0; let music = 0; let sounding = 0;
  for (const s of shots) {
    const d = s.end - s.start;
    speech += s.audio.speech * d;
    music += s.audio.music * d;
    sounding += (1 - s.audio.silence) * d;
  }
  if (speechSec !== undefined) return speechSec >= SPEECH_SHARE * sounding ? 'speech' : 'music';
  return music > 0.25 * (speech + music) ? 'music' : 'speech';
}

/** The rules' settings for a shot whose class changed after the plan was made (assist). */
export function reclassShot(plan: Plan, index: number, cls: ShotClass, why: string): Plan {
  const i = plan.shots.findIndex((s) => s.index === index);
  if (i < 0) return plan;
  return {
    ...plan,
    shots: plan.shots.map((s, k) => (k === i ? { ...s, cls, reason: `${REASONS[cls]} (${why})`, roi: undefined } : s)),
    renditions: plan.renditions.map((r, ri) => ({
      ...r,
      shots: r.shots.map((s, k) => {
        if (k !== i) return s;
        const base = CLASS_SETTINGS[cls][ri === 0 ? 0 : 1];
        return { fps: Math.min(base.fps, plan.baseFps), qp: base.qp };
      }),
    })),
    keyframes: keyframeTimes(plan.shots.map((s, k) => (k === i ? { ...s, cls } : s)), plan.segmentSeconds),
  };
}

/**
 * Static shots get one keyframe (a long GOP is where the bytes are saved); moving ones one every
 * MOVING_GOP_SEGMENTS segments: a keyframe in the Game of Life at 6 fps cost 33 KB where the
 * P-frames around it cost 5–12 KB, and seeking lands at most 12 s before the spot.
 */
export const MOVING_GOP_SEGMENTS = 2;
export function keyframeTimes(shots: ShotPlan[], segmentSeconds: number): number[] {
  const out: number[] = [];
  const STATIC_MAX_GOP = 60; // still seekable within a minute
  for (const s of shots) {
    const every = s.cls === 'slide' || s.cls === 'board' ? STATIC_MAX_GOP : segmentSeconds * MOVING_GOP_SEGMENTS;
    for (let t = s.start; t < s.end - 0.5; t += every) out.push(round3(t));
  }
  return out;
}

/**
 * A rendition that misses a floor gets more on the shots that missed it (by shot index; every
 * shot holds its own floor): text gets a finer quantiser; moving pictures first get more frames
 * (judder is what SSIM punishes at low frame rates, and no quantiser fixes it), then a finer
 * quantiser too. A near miss (`nearMiss`, within NEAR_MISS of the floor) only gets the finer
 * quantiser: on a fractal zoom 6 → 10 fps cost 25% more bytes where QP −3 was enough.
 */
export const NEAR_MISS = 0.02;
export function withMoreBits(plan: Plan, renditionId: string, shots: readonly number[], step = 3, nearMiss: readonly number[] = []): Plan {
  return {
    ...plan,
    renditions: plan.renditions.map((r) => r.id !== renditionId ? r : {
      ...r,
      shots: r.shots.map((s, i) => {
        const { cls, index } = plan.shots[i]!;
        if (!shots.includes(index)) return s;
        // text, and pictures that missed by a hair, need a finer quantiser, not more frames
        if (cls === 'slide' || cls === 'board' || nearMiss.includes(index)) return { ...s, qp: Math.max(14, s.qp - step) };
        const fps = nextRate(s.fps, plan.baseFps);
        return { fps, qp: Math.max(14, s.qp - (fps === s.fps ? step : 1)) };
      }),
    }),
  };
}

/**
 * Shots that missed and were coded coarser than the rules said (the rate model raised their
 * quantiser) get the rules' quantiser back: a wrong guess costs one encode, never the lesson.
 */
export function backToRules(plan: Plan, rules: Plan, renditionId: string, missed: readonly number[]): { plan: Plan; shots: number[] } {
  const ruleR = rules.renditions.find((r) => r.id === renditionId);
  if (!ruleR) return { plan, shots: [] };
  const back: number[] = [];
  const renditions = plan.renditions.map((r) => r.id !== renditionId ? r : {
    ...r,
    shots: r.shots.map((s, i) => {
      const index = plan.shots[i]!.index;
      const rule = ruleR.shots[i]!;
      // the model chooses frame rate and quantiser together (more frames, coarser each): a shot
      // coarser than the rules on either goes back to the rules' pair; one that earlier
      // attempts already gave more than the rules on both keeps it
      if (!missed.includes(index) || (s.qp <= rule.qp && s.fps >= rule.fps)) return s;
      back.push(index);
      return { ...s, qp: rule.qp, fps: rule.fps };
    }),
  });
  return { plan: { ...plan, renditions }, shots: back };
}

/** Next frame rate up that divides the base rate evenly (6 → 10 → 15 → 30 on a 30 fps source). */
export function nextRate(fps: number, base: number): number {
  for (let k = Math.floor(base / fps) - 1; k >= 1; k--) {
    const f = base / k;
    if (Number.isInteger(f) && f > fps) return f;
  }
  return base;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
