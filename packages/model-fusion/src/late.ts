import { toFlat, tunePerGenreThresholds, type Matrix } from '@filmgenre/metrics';
import { z } from 'zod';

/**
 * How the per-genre image weights are chosen:
 * - `equal`: w = 0.5 for every genre (nothing fitted);
 * - `shared`: one w for all genres, the best pooled micro-F1 on the grid (0 and 1 included, so the
 *   fusion can fall back to the better modality alone);
 * - `per-genre`: each genre's own best w (25 weights: the most flexible, and the easiest to overfit).
 */
export const LATE_FUSION_WEIGHTINGS = ['equal', 'shared', 'per-genre'] as const;
export type LateFusionWeighting = (typeof LATE_FUSION_WEIGHTINGS)[number];

/** What a late-fusion directory stores (its decision thresholds live in metadata.json, like every model's). */
export const LateFusionParamsSchema = z.object({
  numGenres: z.int().positive(),
  /** Per genre: p = w·image + (1 − w)·text. */
  weights: z.array(z.number().min(0).max(1)),
  weightGrid: z.array(z.number()),
  /** How the weights were chosen. */
  weighting: z.enum(LATE_FUSION_WEIGHTINGS).optional(),
  /** Mean micro-F1 of each candidate weighting on held-out halves of the validation films. */
  crossValidatedMicroF1: z.record(z.string(), z.number()).optional(),
}).refine((p) => p.weights.length === p.numGenres, { message: 'one weight per genre', path: ['weights'] });
export type LateFusionParams = z.infer<typeof LateFusionParamsSchema>;

/** A fit's weights and what it saw on the fitting films: each genre's best threshold and F1 at its weight. */
export interface LateFusionFit extends LateFusionParams {
  thresholds: number[];
  f1: number[];
  /** Whether the genre had enough positives to tune its weight (else w = 0.5). */
  tuned: boolean[];
}

/** The three n×k inputs of late fusion as flat arrays, checked to describe the same films. */
export function flatFusionInputs(args: Pick<FitLateFusionArgs, 'imageProbs' | 'textProbs' | 'labels' | 'numGenres'>): { image: Float32Array; text: Float32Array; labels: Float32Array } {
  const k = args.numGenres;
  const labels = Float32Array.from(toFlat(args.labels, k, 'labels'));
  const image = Float32Array.from(toFlat(args.imageProbs, k, 'imageProbs'));
  const text = Float32Array.from(toFlat(args.textProbs, k, 'textProbs'));
  if (image.length !== labels.length || text.length !== labels.length) {
    throw new RangeError(`imageProbs, textProbs and labels disagree: ${image.length / k}, ${text.length / k} and ${labels.length / k} films`);
  }
  return { image, text, labels };
}

export interface FitLateFusionArgs {
  imageProbs: Matrix;
  textProbs: Matrix;
  labels: Matrix;
  numGenres: number;
  /** Candidate image weights; default 0, 0.1, …, 1. */
  grid?: readonly number[];
  /** Genres with fewer validation positives keep w = 0.5 and the fallback threshold (metrics' default 20). */
  minSupport?: number;
}

export const DEFAULT_WEIGHT_GRID: readonly number[] = Array.from({ length: 11 }, (_, i) => i / 10);

/** p = w·image + (1 − w)·text per genre, flat n×k. */
export function applyLateFusion(params: Pick<LateFusionParams, 'numGenres' | 'weights'>, imageProbs: Matrix, textProbs: Matrix): Float32Array {
  const k = params.numGenres;
  const image = toFlat(imageProbs, k, 'imageProbs');
  const text = toFlat(textProbs, k, 'textProbs');
  if (image.length !== text.length) throw new RangeError(`imageProbs has ${image.length / k} films, textProbs ${text.length / k}`);
  const out = new Float32Array(image.length);
  for (let i = 0; i < out.length; i++) {
    const w = params.weights[i % k]!;
    out[i] = w * image[i]! + (1 - w) * text[i]!;
  }
  return out;
}

/**
 * Chooses, per genre, the image weight w and the threshold that together maximise that genre's F1 on
 * validation data (thresholds tuned with @filmgenre/metrics' tunePerGenreThresholds at each w). Ties
 * go to the weight closest to 0.5: equal evidence should not make one modality win outright.
 */
export function fitLateFusion(args: FitLateFusionArgs): LateFusionFit {
  const k = args.numGenres;
  const grid = [...new Set(args.grid ?? DEFAULT_WEIGHT_GRID)].sort((a, b) => a - b);
  if (grid.length === 0 || grid.some((w) => !(w >= 0 && w <= 1))) throw new RangeError(`weight grid must hold values in [0, 1], got ${JSON.stringify(args.grid)}`);
  const { image, text, labels } = flatFusionInputs(args);

  const tuneOptions = { numGenres: k, ...(args.minSupport ? { minSupport: args.minSupport } : {}) };
  const runs = grid.map((w) => ({ w, result: tunePerGenreThresholds(applyLateFusion({ numGenres: k, weights: new Array(k).fill(w) }, image, text), labels, tuneOptions) }));
  const middle = runs.reduce((best, r) => (Math.abs(r.w - 0.5) < Math.abs(best.w - 0.5) ? r : best));
  const params: LateFusionFit = { numGenres: k, weights: [], thresholds: [], f1: [], tuned: [], weightGrid: grid };
  for (let g = 0; g < k; g++) {
    let best: (typeof runs)[number] | undefined;
    for (const run of runs) {
      const genre = run.result.perGenre[g]!;
      if (!genre.tuned) continue;
      const current = best?.result.perGenre[g];
      if (!best || genre.f1 > current!.f1 + 1e-12 || (Math.abs(genre.f1 - current!.f1) <= 1e-12 && Math.abs(run.w - 0.5) < Math.abs(best.w - 0.5))) best = run;
    }
    const chosen = best ?? middle;
    const genre = chosen.result.perGenre[g]!;
    params.weights.push(chosen.w);
    params.thresholds.push(genre.threshold);
    params.f1.push(genre.f1);
    params.tuned.push(best !== undefined);
  }
  return params;
}
