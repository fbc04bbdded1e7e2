import { initBackend } from '@filmgenre/tf-runtime';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { buildTinyModels } from './fixture.js';

declare module 'vitest' {
  export interface ProvidedContext {
    servingModelsDir: string;
  }
}

let dir: string | undefined;

/** Fits the tiny models once (cpu backend: the fit needs gradients wasm lacks) and shares the directory. */
export async function setup(project: TestProject): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'serving-models-'));
  await initBackend('cpu', { log: () => {} });
  await buildTinyModels(dir);
  project.provide('servingModelsDir', dir);
}

export function teardown(): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}
