import { performance } from 'node:perf_hooks';
import type { Floors, ModelsConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Analysis } from '../optimize/analyse.js';
import type { Plan } from '../optimize/plan.js';
import type { MediaInfo } from '../optimize/probe.js';
import type { Shot } from '../optimize/shots.js';
import { VAD_FRAME_SEC, loadVad, silenceGate, speechSegments } from './vad.js';
import { shotRegion, type FaceFrame } from './face.js';
import { loadManifest } from './manifest.js';
import { shotFeatures } from './rate/features.js';
import { loadRateModel, pickQp } from './rate/predict.js';
import { floorOf } from './rate/sweep.js';

/** predicted quality must clear the floor by this much: 1.5–3× the held-out error per class */
export const RATE_MARGIN = 0.01;

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

  const pcm = input.analysis.audio?.pcm;
  if (models.vad && plan.audio && pcm && input.analysis.audio) {
    const t0 = performance.now();
    const vad = await loadVad(manifest);
    try {
      const probs = await vad.probabilities(pcm, input.signal);
      const speech = speechSegments(probs, VAD_FRAME_SEC, input.info.duration);
      const gate = silenceGate(speech, input.analysis.audio.rms, input.analysis.audio.frameSec, input.info.duration);
      const gated = gate.reduce((s, g) => s + g.end - g.start, 0);
      plan = { ...plan, audio: { ...plan.audio, gate: gate.length ? gate : undefined } };
      notes.vad = {
        speech_s: round1(speech.reduce((s, g) => s + g.end - g.start, 0)), gated_s: round1(gated),
        pauses: gate.length, frames: probs.length,
      };
    } finally {
      await vad.dispose();
    }
    timings.vad = Math.round(performance.now() - t0);
    log.info({ vad: notes.vad, ms: timings.vad }, 'speech model: pauses coded as silence');
  }
  const heads = plan.shots.filter((s) => s.cls === 'talking_head');
  const tapped = input.faces;
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
    timings.face = Math.round(performance.now() - t0 + tapped.ms);
    notes.face = { shots: found, regions: plan.shots.filter((s) => s.roi).length };
    log.info({ face: notes.face, ms: timings.face }, 'face model: teacher regions');
  }
  const low = plan.renditions[0];
  if (models.rate && low) {
    const t0 = performance.now();
    const rate = await loadRateModel(input.dataDir, manifest);
    const picked: Array<{ shot: number; cls: string; rule: number; model: number }> = [];
    try {
      const qps: number[] = [];
      for (const [i, shot] of input.shots.entries()) {
        const rule = low.shots[i]!;
        const feats = shotFeatures(shot, { width: low.width, height: low.height, fps: rule.fps });
        const qp = await pickQp(rate.session, feats, floorOf(shot.cls, input.floors).floor, { margin: RATE_MARGIN, fallback: rule.qp });
        qps.push(qp);
        picked.push({ shot: shot.index, cls: shot.cls, rule: rule.qp, model: qp });
      }
      // only the lowest rendition, the one every student pays for and the model was trained on
      plan = { ...plan, renditions: plan.renditions.map((r, k) => (k !== 0 ? r : { ...r, shots: r.shots.map((s, i) => ({ ...s, qp: qps[i]! })) })) };
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
