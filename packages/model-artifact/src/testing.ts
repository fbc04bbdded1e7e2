// Test helpers for packages that write model directories (behind the ./testing entry: not for production code).
import { GENRES } from '@filmgenre/core';
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FilmsRecord } from './films.js';
import { METADATA_JSON, type ModelMetadataInput } from './metadata.js';
import { fieldChecksums, sha256 } from './model-dir.js';

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

/**
 * What a forger does to a model directory: applies `edit` to its metadata, then records the current
 * sha256 of every listed file and of every field, so the directory passes the checksums and only the
 * deeper checks (finite weights, warm-up, input sizes) can refuse it.
 */
export function resealModelDir(dir: string, edit: (metadata: Record<string, unknown>) => void = () => {}): void {
  const path = join(dir, METADATA_JSON);
  const metadata = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown> & { files: Record<string, string> };
  for (const file of Object.keys(metadata.files)) if (existsSync(join(dir, file))) metadata.files[file] = sha256(readFileSync(join(dir, file)));
  edit(metadata);
  writeFileSync(path, `${JSON.stringify({ ...metadata, checksums: fieldChecksums(metadata) }, null, 2)}\n`);
}
