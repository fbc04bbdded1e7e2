import { initBackend } from '@filmgenre/tf-runtime';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildSentenceModels, buildTinyModels } from '@filmgenre/serving-testing';

declare module 'vitest' {
  export interface ProvidedContext {
    servingModelsDir: string;
    servingSentenceModelsDir: string;
  }
}

const dirs: string[] = [];

/**
 * Fits the tiny models once and shares their directories: {cnn, lstm, fusion} (a square study CNN, a
 * BiLSTM, late fusion; cpu backend: the CNN's fit needs gradients wasm lacks) and {cnn, sentence,
 * fusion} (the default models' shape: a non-square pretrained-feature poster model, the sentence
 * encoder, stacked fusion; wasm, since only dense heads are fitted and the encoder is slow on cpu).
 */
export async function setup(project: TestProject): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'serving-models-'));
  dirs.push(dir);
  await initBackend('cpu', { log: () => {} });
  await buildTinyModels(dir);
  project.provide('servingModelsDir', dir);
  const sentenceDir = mkdtempSync(join(tmpdir(), 'serving-sentence-models-'));
  dirs.push(sentenceDir);
  await initBackend('wasm', { log: () => {} });
  await buildSentenceModels(sentenceDir);
  project.provide('servingSentenceModelsDir', sentenceDir);
}

export function teardown(): void {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
