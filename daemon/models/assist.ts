import { performance } from 'node:perf_hooks';
import type { Floors, ModelsConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Analysis } from '../optimize/analyse.js';
import { AUDIO_SETTINGS, lessonAudio, reclassShot, type Plan } from '../optimize/plan.js';
import type { MediaInfo } from '../optimize/probe.js';
import type { Shot } from '../optimize/shots.js';
import { VAD_FRAME_SEC, loadVad, silenceGate, speechSegments } from './vad.js';
import { shotRegion, type FaceFrame } from './face.js';
import { loadManifest } from './manifest.js';
import { shotFeatures } from './rate/features.js';
import { loadRateModel, pickQp } from './rate/predict.js';
import { RATE_CHOICES, pickRate } from './rate/rates.js';
import { floorOf } from './rate/sweep.js';

/** predicted quality must clear the floor by this much: 1.5–3× the held-out error per class */
export const RATE_MARGIN = 0.01;
/** a talking-head shot needs this many face-model frames (2 per second) to be judged faceless */
export const MIN_FACE_FRAMES = 2;
/** ... and faces in fewer than this share of them: one stray detection is not a teacher */
export const NO_FACE_SHARE = 0.1;
/** a motion shot with a face in this share of its frames ... */
export const FACE_SHARE = 0.6;
/** ... and a picture that changes less than this (mean abs diff at 160x90) ... */
export const HANDHELD_MAX_DIFF = 9;
/**
 * ... spread over the frame like sensor noise (TI under this many times the mean diff: a noisy
 * handheld phone on a face measured 1.7) is a talking head. Film scenes move objects: their TI
 * is 2.4–3.2 times their mean diff, and a cartoon full of faces stays motion.
 */
export const HANDHELD_TI_RATIO = 2.1;

/**
 * The models' say in the plan, between the rules (makePlan) and the encoder. Each model only
 * ever changes the part of the plan it knows about, and the verify stage still measures every
 * floor afterwards: a model can save bytes, never publish a lesson below its floor.
 */
export interface AssistInput {
  info: MediaInfo;
  analysis: Analysis;
  shots: Shot[];
  plan: Plan;
  models: Readonly<ModelsConfig>;
  floors: Readonly<Floors>;
  /** faces the face model found during the analysis decode (faceTap), with its time */
  faces?: { frames: FaceFrame[]; ms: number } | undefined;
  /** the box's data folder: its own rate model version, if it trained one */
  dataDir?: string | undefined;
  log: Logger;
  signal?: AbortSignal | undefined;
}

export interface AssistResult {
  plan: Plan;
  /** ms per model, load included: what the models cost this lesson */
  timings: Record<string, number>;
  /** what each model decided, for report.json */
  notes: Record<string, unknown>;
}

export async function assistPlan(input: AssistInput): Promise<AssistResult> {
  const { models, log } = input;
  let plan = input.plan;
  const timings: Record<string, number> = {};
  const notes: Record<string, unknown> = {};
  const manifest = loadManifest();

  const pcm = input.analysis.audio?.pcmFile;
  if (models.vad && plan.audio && pcm && input.analysis.audio) {
    const t0 = performance.now();
    const vad = await loadVad(manifest);
    try {
      const probs = await vad.probabilities(pcm, input.signal);
      const speech = speechSegments(probs, VAD_FRAME_SEC, input.info.duration);
      const gate = silenceGate(speech, input.analysis.audio.rms, input.analysis.audio.frameSec, input.info.duration);
      const gated = gate.reduce((s, g) => s + g.end - g.start, 0);
      const speechSec = speech.reduce((s, g) => s + g.end - g.start, 0);
      // the model, not the energy heuristic, says whether the lesson is speech or music
      const mode = lessonAudio(input.shots, speechSec);
      plan = { ...plan, audio: { ...AUDIO_SETTINGS[mode], gate: gate.length ? gate : undefined } };
      notes.vad = {
        speech_s: round1(speechSec), gated_s: round1(gated),
        pauses: gate.length, frames: probs.length, mode,
      };
    } finally {
      await vad.dispose();
    }
    timings.vad = Math.round(performance.now() - t0);
    log.info({ vad: notes.vad, ms: timings.vad }, 'speech model: pauses coded as silence');
  }
  const tapped = input.faces;
  // the other way round: a shaky, noisy phone camera on a teacher moves enough for the rules to
  // call it motion; where the model sees a face in most frames and the picture moves no more
  // than a handheld camera does, it is a talking head (its frame rate and floor)
  const promoted: number[] = [];
  if (models.face && tapped) {
    for (const s of plan.shots) {
      const stats = input.shots.find((x) => x.index === s.index)?.video;
      if (s.cls !== 'motion' || !stats || stats.diff >= HANDHELD_MAX_DIFF || stats.ti > HANDHELD_TI_RATIO * stats.diff) continue;
      const track = tapped.frames.filter((f) => f.t >= s.start && f.t < s.end);
      if (track.length >= MIN_FACE_FRAMES && track.filter((f) => f.faces.length > 0).length >= FACE_SHARE * track.length) promoted.push(s.index);
    }
    for (const i of promoted) plan = reclassShot(plan, i, 'talking_head', 'the face model found the teacher');
  }
  const heads = plan.shots.filter((s) => s.cls === 'talking_head');
  if (models.face && tapped && heads.length) {
    const t0 = performance.now();
    const found: Array<{ shot: number; frames: number; withFace: number }> = [];
    const regions = new Map<number, ReturnType<typeof roundRegion>>();
    for (const s of heads) {
      const track = tapped.frames.filter((f) => f.t >= s.start && f.t < s.end);
      const roi = shotRegion(track);
      found.push({ shot: s.index, frames: track.length, withFace: track.filter((f) => f.faces.length > 0).length });
      if (roi) regions.set(s.index, roundRegion(roi));
    }
    plan = { ...plan, shots: plan.shots.map((s) => (regions.has(s.index) ? { ...s, roi: regions.get(s.index) } : s)) };
    // the rules call anything that moves in one place a talking head; people walking past a
    // fixed camera do too. Where the model looked and saw no face, the shot is coded as motion.
    const faceless = found.filter((f) => f.frames >= MIN_FACE_FRAMES && f.withFace < NO_FACE_SHARE * f.frames);
    for (const f of faceless) plan = reclassShot(plan, f.shot, 'motion', 'the face model found no face');
    timings.face = Math.round(performance.now() - t0 + tapped.ms);
    notes.face = { shots: found, regions: plan.shots.filter((s) => s.roi).length, reclassed: faceless.map((f) => f.shot), promoted };
    log.info({ face: notes.face, ms: timings.face }, 'face model: teacher regions');
  }
  const low = plan.renditions[0];
  if (models.rate && low) {
    const t0 = performance.now();
    const rate = await loadRateModel(input.dataDir, manifest);
    const picked: Array<{ shot: number; cls: string; rule: number; model: number; ruleFps: number; fps: number }> = [];
    try {
      const chosen: Array<{ fps: number; qp: number }> = [];
      for (const [i, given] of input.shots.entries()) {
        // the class the plan ended with (the face model may have changed it)
        const shot = { ...given, cls: plan.shots[i]?.cls ?? given.cls };
        const rule = low.shots[i]!;
        const feats = shotFeatures(shot, { width: low.width, height: low.height, fps: rule.fps });
        const floor = floorOf(shot.cls, input.floors).floor;
        // frame rate and quantiser together where the model learnt frame rates (rates.ts);
        // elsewhere, and with a model trained before the fps sweep, the quantiser only
        const both = RATE_CHOICES[shot.cls] && rate.fpsClasses.includes(shot.cls)
          ? await pickRate(rate.session, feats, floor, { margin: RATE_MARGIN, baseFps: plan.baseFps, ruleFps: rule.fps })
          : undefined;
        const pick = both ?? { fps: rule.fps, qp: await pickQp(rate.session, feats, floor, { margin: RATE_MARGIN, fallback: rule.qp }) };
        chosen.push({ fps: pick.fps, qp: pick.qp });
        picked.push({ shot: shot.index, cls: shot.cls, rule: rule.qp, model: pick.qp, ruleFps: rule.fps, fps: pick.fps });
      }
      // only the lowest rendition, the one every student pays for and the model was trained on
      plan = { ...plan, renditions: plan.renditions.map((r, k) => (k !== 0 ? r : { ...r, shots: r.shots.map((s, i) => ({ ...s, ...chosen[i]! })) })) };
    } finally {
      await rate.session.dispose();
    }
    timings.rate = Math.round(performance.now() - t0);
    notes.rate = { model: rate.source, file: rate.file, shots: picked };
    log.info({ rate: notes.rate, ms: timings.rate }, 'rate model: quantiser per shot');
  }
  return { plan, timings, notes };
}

function roundRegion(r: { x: number; y: number; w: number; h: number }): { x: number; y: number; w: number; h: number } {
  const q = (v: number): number => Math.round(v * 1000) / 1000;
  return { x: q(r.x), y: q(r.y), w: q(r.w), h: q(r.h) };
}

function round1(x: number): number { return Math.round(x * 10) / 10; }
