import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  assertWritableDir, defaultCacheRoot, parseCliOptions, findWorkspaceRoot, foldPlan, formatBadRows, genresOf, GENRES, hashString, holdoutSplit, readDataset, resolveDatasetDir, seedMathRandom,
  writeFileAtomic, type Dataset, type Film, type HoldoutSplit,
} from '@filmgenre/core';
import { posterThumbnailDataUri } from '@filmgenre/data-images';
import { readModelMetadata } from '@filmgenre/model-artifact';
import { evaluateMultiLabel, randomFilmsTable } from '@filmgenre/metrics';
import { ENCODER_RUNTIME_ENV, encoderRuntimeLabel, resolveEncoderRuntime } from '@filmgenre/onnx-runtime';
import { initBackend, type BackendInfo } from '@filmgenre/tf-runtime';
import { TrainingInterrupted, type Recipe, type TrainedModel } from '@filmgenre/training';
import type { TrainRun } from './config.js';
import { RECIPES } from './recipes.js';
import { renderReportHtml, type RunReport } from './report/html.js';

/** Recipes to run for `--model`, in order; a recipe's members must be trained before it or already published. */
export function plannedRecipes(run: Pick<TrainRun, 'model'>, options: Readonly<Record<string, object>>, modelsDir: string, recipes: readonly Recipe[] = RECIPES): Recipe[] {
  const wanted = recipes.filter((r) => run.model.includes(r.key));
  wanted.forEach((recipe, i) => {
    for (const need of recipe.needs?.(options[recipe.key] as never) ?? []) {
      const before = wanted.slice(0, i).some((r) => r.key === need);
      if (!before && !existsSync(join(modelsDir, need, 'metadata.json'))) {
        throw new Error(`${recipe.key} needs the ${need} model, which is neither trained in this run nor in ${modelsDir}: train it first (--model ${need},${recipe.key})`);
      }
    }
  });
  return wanted;
}

/**
 * The fusions of the models directory that this run leaves stale: fitted on a member the run
 * retrains, and not trained in the run themselves. Each is refitted after the members, over the
 * current members, with the options it was fitted with (its metadata's training.options), so that a
 * team retraining its own model alone leaves a directory whose every model serves.
 */
export function fusionRefits(run: Pick<TrainRun, 'model'>, modelsDir: string, recipes: readonly Recipe[] = RECIPES): { recipe: Recipe; options: object; members: string[] }[] {
  return recipes.filter((r) => r.modality === 'fusion' && !run.model.includes(r.key) && existsSync(join(modelsDir, r.key, 'metadata.json'))).flatMap((recipe) => {
    const metadata = readModelMetadata(join(modelsDir, recipe.key));
    const members = Object.keys(metadata.members ?? {});
    if (!members.some((key) => run.model.includes(key))) return [];
    // Recorded after parsing: a list given as `a,b` on the command line is stored as ['a', 'b'].
    const recorded = Object.entries((metadata.training['options'] ?? {}) as Record<string, unknown>).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v]);
    return [{ recipe, members, options: parseCliOptions(recipe.options, Object.fromEntries(recorded), recipe.key) as object }];
  });
}

/**
 * Trains the chosen models in order through their recipes, then writes the run report. A stop
 * request (`signal`: Ctrl-C or SIGTERM) is honoured in every phase within about a second: nothing
 * is published for the interrupted model, its last completed epoch stays checkpointed, no report is
 * written, the command says how to resume and exits with 130.
 */
export async function train(run: TrainRun, recipeOptions: Readonly<Record<string, object>>, signal: AbortSignal): Promise<void> {
  const log = (line: string) => console.error(line);
  const root = findWorkspaceRoot();
  const modelsDir = resolve(run.out);
  const reportDir = resolve(run.reportDir ?? join(root, 'reports', new Date().toISOString().replace(/[:.]/g, '-')));
  const recipes = plannedRecipes(run, recipeOptions, modelsDir);
  const refits = fusionRefits(run, modelsDir);
  // Before any work: a read-only or full directory is named now, not when the first epoch is saved.
  assertWritableDir(modelsDir, '--out');
  assertWritableDir(reportDir, '--report-dir');
  // Training: the threaded wasm build even on one thread, so native kernels work on tfjs's tensors in place.
  const backend = await initBackend(run.backend, { wasmSharedMemory: true });
  const encoders = encoderRuntimeLabel(resolveEncoderRuntime(), backend.name);
  log(`[encoders] frozen encoders on ${encoders} (${ENCODER_RUNTIME_ENV}: ${process.env[ENCODER_RUNTIME_ENV] || 'auto'})`);
  const dataDir = resolveDatasetDir(run.data);
  const dataset = readDataset(dataDir, run.limit ? { limit: run.limit } : {});
  log(`[data] ${dataDir}: ${formatBadRows(dataset)}`);
  const split = holdoutSplit(dataset.films, { seed: run.seed, folds: run.folds });
  const folds = foldPlan(dataset.films, { seed: run.seed, folds: run.folds });
  log(`[data] split (seed ${run.seed}, fold 0 of ${run.folds} for validation): ${split.train.length} train, ${split.validation.length} validation (digest ${split.record.digest})`);
  const cacheDir = run.cacheDir ? resolve(run.cacheDir) : defaultCacheRoot(root);
  const results: TrainedModel[] = [];
  const started = Date.now();
  let stoppedIn: string | undefined;
  const steps = [
    ...recipes.map((recipe) => ({ recipe, options: recipeOptions[recipe.key] as object, refit: false })),
    ...refits.map((r) => ({ ...r, refit: true })),
  ];
  for (const { recipe, options, refit } of steps) {
    if (signal.aborted) {
      stoppedIn = recipe.key;
      break;
    }
    if (refit) log(`[train] ${recipe.key} was fitted on ${run.model.filter((key) => refits.some((r) => r.recipe === recipe && r.members.includes(key))).join(', ')}, retrained in this run: refitting it over the current members with the options it was fitted with`);
    // tfjs' unseeded draws (initialisers, dropout) come from Math.random: seeding it per model makes
    // a run repeat for a given --seed, and makes `--model lstm` give the same LSTM as `--model all`.
    const rng = seedMathRandom(hashString(`${run.seed}:${recipe.key}`));
    try {
      results.push(await recipe.train({
        films: dataset.films, split, folds, seed: run.seed, backend, cacheDir, modelsDir,
        checkpointDir: join(modelsDir, '.checkpoints', recipe.key), resume: run.resume, signal, rng, log,
      }, options as never));
    } catch (error) {
      if (!(error instanceof TrainingInterrupted) && !signal.aborted) {
        if (!refit) throw error;
        // The member is published: the server serves it and names the stale fusion unavailable, with the reason.
        log(`[train] warning: ${recipe.key} could not be refitted (${(error as Error).message}); it stays fitted on the previous members, and serving leaves it out until \`--model ${recipe.key}\` succeeds`);
        process.exitCode = 1;
        continue;
      }
      stoppedIn = recipe.key;
      break;
    }
  }
  if (stoppedIn !== undefined) {
    log(
      `[train] stopped in ${stoppedIn}: nothing was published for it, and no run report was written; its last completed epoch (if any) is checkpointed in ${join(modelsDir, '.checkpoints', stoppedIn)}.\n` +
        `[train] to continue: the same command with --resume --model ${steps.slice(steps.findIndex((s) => s.recipe.key === stoppedIn)).map((s) => s.recipe.key).join(',')}`,
    );
    process.exitCode = 130;
  } else if (results.length > 0) {
    log(`[report] writing ${reportDir}`);
    if (await writeRunReport(reportDir, { run, dataset, split, backend, encoders }, results, (Date.now() - started) / 1000, signal)) {
      log(`[report] ${join(reportDir, 'report.html')} and metrics.json`);
    } else {
      log(`[report] stopped: no report was written (every model of the run was published: ${results.map((r) => r.dir).join(', ')})`);
      process.exitCode = 130;
    }
  }
}

interface RunFacts {
  run: TrainRun;
  dataset: Dataset;
  split: HoldoutSplit<Film>;
  backend: BackendInfo;
  encoders: string;
}

/** Writes report.html and metrics.json, unless `signal` stops it first (then false, and nothing is written). */
async function writeRunReport(dir: string, facts: RunFacts, results: TrainedModel[], seconds: number, signal: AbortSignal): Promise<boolean> {
  const byId = new Map(facts.dataset.films.map((f) => [f.id, f]));
  // Out-of-fold scores with cross-fitted thresholds where the recipe computed them; else the validation fold at the model's thresholds.
  const models = results.map((r) => ({ result: r, metrics: r.outOfSample?.report ?? evaluateMultiLabel({ probabilities: r.heldOut.probabilities, labels: r.heldOut.labels, thresholds: r.thresholds }) }));
  // The table uses films every model saw, so the rows compare like with like.
  const common = results.map((r) => new Set(r.heldOut.ids)).reduce((a, b) => new Set([...a].filter((id) => b.has(id))));
  const commonIds = [...common];
  const predictions: Record<string, Float32Array> = {};
  for (const r of results) {
    const index = new Map(r.heldOut.ids.map((id, i) => [id, i]));
    const rows = new Float32Array(commonIds.length * GENRES.length);
    commonIds.forEach((id, i) => rows.set(r.heldOut.probabilities.subarray(index.get(id)! * GENRES.length, (index.get(id)! + 1) * GENRES.length), i * GENRES.length));
    predictions[r.key] = rows;
  }
  const table = randomFilmsTable({
    films: commonIds.map((id) => ({ id, truth: genresOf(byId.get(id)!.labels) })),
    predictions, genres: [...GENRES], count: 12, seed: facts.run.seed,
  });
  // The posters are read while a stop may come: a stalled read (a hung disk) must not hold the stop up.
  const stopped = new Promise<undefined>((resolve) => signal.addEventListener('abort', () => resolve(undefined), { once: true }));
  const films = signal.aborted ? undefined : await Promise.race([stopped, Promise.all(table.map(async (row) => {
    const poster = await posterThumbnailDataUri(byId.get(row.id)!.posterPath);
    return { id: row.id, ...(poster ? { poster } : {}), overview: byId.get(row.id)?.overview ?? '', truth: row.truth, predictions: row.predictions };
  }))]);
  if (!films || signal.aborted) return false;
  const report: RunReport = {
    title: 'Film genre classifier: training run',
    createdAt: new Date().toISOString(),
    facts: {
      dataset: facts.dataset.dir, films: facts.dataset.summary.usable, 'bad rows': facts.dataset.summary.bad,
      'train / validation': `${facts.split.train.length} / ${facts.split.validation.length}`, seed: facts.run.seed, 'split digest': facts.split.record.digest,
      backend: `${facts.backend.name} (${facts.backend.threads} thread${facts.backend.threads === 1 ? '' : 's'})`,
      'frozen encoders on': facts.encoders,
      'duration (min)': (seconds / 60).toFixed(1),
    },
    models: models.map(({ result, metrics }) => ({
      name: result.key, variant: result.variant, heldOut: result.outOfSample?.scheme === 'out-of-fold' ? 'out of fold' : 'validation fold', history: result.history, micro: metrics.micro, macro: metrics.macro, macroAllGenres: metrics.macroAllGenres, loss: metrics.loss,
      perGenre: metrics.perGenre.map((g, i) => ({ ...g, threshold: result.thresholds[i]! })), bestEpoch: result.bestEpoch, seconds: result.seconds,
    })),
    films,
  };
  const summary = models.map(({ result, metrics }) => ({
    name: result.key, variant: result.variant, dir: result.dir, history: result.history, bestEpoch: result.bestEpoch, seconds: result.seconds,
    heldOut: result.outOfSample?.scheme ?? 'validation', films: result.heldOut.ids.length, metrics,
  }));
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(join(dir, 'metrics.json'), `${JSON.stringify({ ...report, models: summary }, null, 2)}\n`);
  writeFileAtomic(join(dir, 'report.html'), renderReportHtml(report));
  return true;
}
