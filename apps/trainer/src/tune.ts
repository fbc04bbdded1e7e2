import { join, resolve } from 'node:path';
import {
  assertWritableDir, createRng, defaultCacheRoot, findWorkspaceRoot, foldPlan, hashString, holdoutSplit, readDataset, resolveDatasetDir, seedMathRandom, writeFileAtomic,
} from '@filmgenre/core';
import { initBackend } from '@filmgenre/tf-runtime';
import { evaluateMultiLabel } from '@filmgenre/metrics';
import { TrainingInterrupted } from '@filmgenre/training';
import type { TuneConfig } from './config.js';
import { RECIPES } from './recipes.js';

export interface Trial {
  trial: number;
  params: { learningRate: number; dropout: number; classWeightStrength: number; augmentStrength: number };
  /** How the scored predictions were held out: the validation fold, or every film out of fold. */
  scheme: 'validation' | 'out-of-fold';
  microF1: number;
  macroF1: number;
  loss: number;
  bestEpoch: number;
  seconds: number;
}

/** Log-uniform and uniform draws from a seeded generator, so a search is repeatable. */
function sampleParams(rng: () => number, model: string): Trial['params'] {
  const logUniform = (lo: number, hi: number) => Math.exp(Math.log(lo) + rng() * (Math.log(hi) - Math.log(lo)));
  return {
    learningRate: Number(logUniform(3e-4, 5e-3).toPrecision(2)),
    dropout: Number((0.1 + rng() * 0.5).toFixed(2)),
    classWeightStrength: Number((rng() * 1).toFixed(2)),
    augmentStrength: model === 'cnn' ? Number((rng() * 1.5).toFixed(2)) : 0,
  };
}

export function leaderboardMarkdown(trials: readonly Trial[]): string {
  const sorted = [...trials].sort((a, b) => b.microF1 - a.microF1);
  const rows = sorted.map((t, rank) => `| ${rank + 1} | ${t.trial} | ${t.params.learningRate} | ${t.params.dropout} | ${t.params.classWeightStrength} | ${t.params.augmentStrength} | ${t.scheme} | ${t.microF1.toFixed(4)} | ${t.macroF1.toFixed(4)} | ${t.loss.toFixed(4)} | ${t.bestEpoch} | ${t.seconds.toFixed(0)} |`);
  return ['| rank | trial | learning rate | dropout | class-weight strength | augment strength | held out | micro-F1 | macro-F1 | loss | best epoch | s |', '|---|---|---|---|---|---|---|---|---|---|---|---|', ...rows].join('\n');
}

/**
 * Random search within a wall-clock budget: each trial trains the model through its recipe and is
 * scored as the trainer scores it: a cross-fitted model by its out-of-fold predictions with
 * cross-fitted thresholds (the recipe's own report), a model trained once by the validation fold
 * with its shipped thresholds. Scoring cross-fitted predictions with thresholds tuned on those same
 * predictions would flatter every trial. Writes leaderboard.json, leaderboard.md and
 * best-config.json after every trial.
 */
export async function tune(options: TuneConfig, signal: AbortSignal): Promise<void> {
  const log = (line: string) => console.error(line);
  const outDir = resolve(options.out);
  assertWritableDir(outDir, '--out');
  const backend = await initBackend(options.backend, { wasmSharedMemory: true });
  const dataset = readDataset(resolveDatasetDir(options.data), options.limit ? { limit: options.limit } : {});
  const split = holdoutSplit(dataset.films, { seed: options.seed, folds: options.folds });
  const folds = foldPlan(dataset.films, { seed: options.seed, folds: options.folds });
  const recipe = RECIPES.find((r) => r.key === options.model)!;
  const cacheDir = options.cacheDir ? resolve(options.cacheDir) : defaultCacheRoot(findWorkspaceRoot());
  const rng = createRng(options.seed + 1);
  const deadline = Date.now() + options.budgetMinutes * 60_000;
  const trials: Trial[] = [];
  for (let trial = 1; trial <= options.trials && Date.now() < deadline && !signal.aborted; trial++) {
    const params = sampleParams(rng, options.model);
    log(`[tune] trial ${trial}: ${JSON.stringify(params)}`);
    const { augmentStrength, ...common } = params;
    const recipeOptions = recipe.options.parse({
      ...common, patience: 2, ...(options.epochs ? { epochs: options.epochs } : {}), ...(options.model === 'cnn' ? { augmentStrength } : {}),
    });
    const modelsDir = join(outDir, 'trials', String(trial));
    let result;
    try {
      result = await recipe.train({
        films: dataset.films, split, folds, seed: options.seed, backend, cacheDir, modelsDir, checkpointDir: join(modelsDir, '.checkpoints', recipe.key),
        resume: false, signal, rng: seedMathRandom(hashString(`${options.seed}:${recipe.key}`)), log,
      }, recipeOptions);
    } catch (error) {
      if (error instanceof TrainingInterrupted || signal.aborted) break;
      throw error;
    }
    const metrics = result.outOfSample?.report ?? evaluateMultiLabel({ probabilities: result.heldOut.probabilities, labels: result.heldOut.labels, thresholds: result.thresholds });
    const scheme = result.outOfSample?.scheme ?? 'validation';
    trials.push({ trial, params, scheme, microF1: metrics.micro.f1, macroF1: metrics.macro.f1, loss: metrics.loss, bestEpoch: result.bestEpoch ?? 0, seconds: result.seconds });
    const best = [...trials].sort((a, b) => b.microF1 - a.microF1)[0]!;
    writeFileAtomic(join(outDir, 'leaderboard.json'), `${JSON.stringify({ model: options.model, trials }, null, 2)}\n`);
    writeFileAtomic(join(outDir, 'leaderboard.md'), `${leaderboardMarkdown(trials)}\n`);
    writeFileAtomic(join(outDir, 'best-config.json'), `${JSON.stringify({ model: options.model, ...best.params, microF1: best.microF1, macroF1: best.macroF1 }, null, 2)}\n`);
    log(`[tune] trial ${trial}: ${scheme} micro-F1 ${metrics.micro.f1.toFixed(4)} macro-F1 ${metrics.macro.f1.toFixed(4)} (best so far: trial ${best.trial}, ${best.microF1.toFixed(4)})`);
  }
  log(`[tune] ${trials.length} trial(s); leaderboard in ${join(outDir, 'leaderboard.md')}`);
  console.log(leaderboardMarkdown(trials));
}
