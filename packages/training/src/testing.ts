// Test helpers for recipe packages (behind the ./testing entry: not for production code).
import { foldPlan, holdoutSplit, readDataset, resolveDatasetDir, seedMathRandom, type Film } from '@filmgenre/core';
import { cpus, loadavg } from 'node:os';
import { initBackend } from '@filmgenre/tf-runtime';
import type { RecipeContext } from './recipe.js';

/**
 * A recipe context over the first `limit` films of the real dataset, writing into `workDir`: what
 * the trainer app builds for a run, without the app.
 */
export async function recipeContext(options: { workDir: string; key: string; limit: number; seed?: number; signal?: AbortSignal; cacheDir?: string; films?: Film[] }): Promise<RecipeContext> {
  const backend = await initBackend('wasm', { log: () => {} });
  const films = options.films ?? readDataset(resolveDatasetDir(), { limit: options.limit }).films;
  const seed = options.seed ?? 0;
  return {
    films, split: holdoutSplit(films, { seed }), folds: foldPlan(films, { seed }), seed, backend,
    cacheDir: options.cacheDir ?? `${options.workDir}/cache`, modelsDir: `${options.workDir}/models`, checkpointDir: `${options.workDir}/models/.checkpoints/${options.key}`,
    resume: false, signal: options.signal ?? new AbortController().signal, rng: seedMathRandom(seed + 1), log: () => {},
  };
}

/**
 * How long a stop request may take to be honoured: 2 s on an idle machine (issue 21), scaled by the
 * run queue per core on a busier one, where every step of work, and so the wait for it, is slower.
 */
export function stopBoundMs(): number {
  return 2000 * Math.max(1, loadavg()[0]! / cpus().length);
}
