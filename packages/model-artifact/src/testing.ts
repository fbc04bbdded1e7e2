// Test helpers for packages that write model directories (behind the ./testing entry: not for production code).
import { GENRES } from '@filmgenre/core';
import * as tf from '@tensorflow/tfjs';
import type { FilmsRecord } from './films.js';
import type { ModelMetadataInput } from './metadata.js';

/** Metadata of a model trained on nothing in particular: fill in what the test is about. */
export function fixtureMetadata(overrides: Partial<ModelMetadataInput> = {}): Omit<ModelMetadataInput, 'kind' | 'modality'> & Partial<ModelMetadataInput> {
  return {
    name: 'fixture', variant: 'test', genres: [...GENRES], thresholds: GENRES.map(() => 0.3), preprocessing: {},
    split: { seed: 0, folds: 5, validationFold: 0, films: 0, validationFilms: 0, digest: '0000000000000000' },
    metrics: {}, history: [], training: {}, versions: { '@tensorflow/tfjs': tf.version.tfjs }, gitCommit: null,
    backend: tf.getBackend() ?? 'cpu', createdAt: new Date(0).toISOString(),
    ...overrides,
  };
}

/** An empty films record (no training films, no held-out predictions). */
export function fixtureFilms(): FilmsRecord {
  return { scheme: 'validation', train: [], heldOut: [], heldOutProbabilities: new Float32Array(0) };
}
