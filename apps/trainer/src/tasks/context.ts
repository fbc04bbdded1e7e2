import type { Dataset, Film, Split } from '@filmgenre/core';
import type { BackendInfo } from '@filmgenre/tf-runtime';
import type { TrainConfig } from '../config.js';
import type { FitResult } from '../training/fit.js';

/** Everything a modality's training needs from the run. */
export interface TrainContext {
  config: TrainConfig;
  dataset: Dataset;
  split: Split<Film>;
  backend: BackendInfo;
  outDir: string;
  checkpointRoot: string;
  cacheDir: string;
  signal: AbortSignal;
  log: (line: string) => void;
}

/** What each trained model reports back to the run. */
export interface TrainedModel {
  name: 'cnn' | 'lstm' | 'fusion';
  variant: string;
  dir: string;
  validationIds: string[];
  validationProbabilities: Float32Array;
  validationLabels: Float32Array;
  thresholds: number[];
  fit?: FitResult;
  seconds: number;
  interrupted: boolean;
}

export function labelMatrix(films: readonly { labels: Uint8Array }[], numGenres: number): Float32Array {
  const out = new Float32Array(films.length * numGenres);
  films.forEach((f, i) => out.set(f.labels, i * numGenres));
  return out;
}
