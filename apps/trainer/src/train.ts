import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { findWorkspaceRoot, formatBadRows, GENRES, genresOf, hashString, readDataset, resolveDatasetDir, seedMathRandom, splitTrainValidation } from '@filmgenre/core';
import { initBackend, writeFileAtomic } from '@filmgenre/tf-runtime';
import { evaluateMultiLabel, randomFilmsTable } from '@filmgenre/metrics';
import type { TrainConfig } from './config.js';
import { renderReportHtml, type RunReport } from './report/html.js';
import type { TrainContext, TrainedModel } from './tasks/context.js';

/** Aborts on the first Ctrl-C / SIGTERM (finishing cleanly); a second one exits at once. */
function interruptSignal(log: (line: string) => void): AbortController {
  const controller = new AbortController();
  const onSignal = (name: string) => {
    if (controller.signal.aborted) process.exit(130);
    log(`\n${name}: stopping after the current batch; the last completed epoch stays checkpointed (use --resume)`);
    controller.abort();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  return controller;
}

export async function train(config: TrainConfig): Promise<void> {
  const log = (line: string) => console.error(line);
  const root = findWorkspaceRoot();
  const backend = await initBackend(config.backend);
  const dataDir = resolveDatasetDir(config.data);
  const dataset = readDataset(dataDir, config.limit ? { limit: config.limit } : {});
  log(`[data] ${dataDir}: ${formatBadRows(dataset)}`);
  const split = splitTrainValidation(dataset.films, { seed: config.seed, validationFraction: config.validationFraction });
  log(`[data] split (seed ${config.seed}): ${split.train.length} train, ${split.validation.length} validation`);
  const outDir = resolve(config.out);
  const controller = interruptSignal(log);
  const ctx: TrainContext = {
    config, dataset, split, backend, outDir,
    checkpointRoot: join(outDir, '.checkpoints'),
    cacheDir: config.cacheDir ? resolve(config.cacheDir) : join(root, '.cache'),
    signal: controller.signal,
    log,
  };
  const wanted = config.model === 'all' ? ['cnn', 'lstm', 'fusion'] : [config.model];
  const results: TrainedModel[] = [];
  const started = Date.now();
  for (const name of wanted) {
    if (controller.signal.aborted) break;
    // tfjs' unseeded draws (initialisers, dropout) come from Math.random: seeding it per model makes
    // a run repeat for a given --seed, and makes `--model lstm` give the same LSTM as `--model all`.
    seedMathRandom(hashString(`${config.seed}:${name}`));
    // Each modality's code is loaded only when that model is trained.
    const result =
      name === 'cnn' ? await (await import('./tasks/poster.js')).trainPosterModel(ctx)
      : name === 'lstm' ? await (await import('./tasks/overview.js')).trainOverviewModel(ctx)
      : await (await import('./tasks/fusion.js')).trainFusionModel(ctx);
    results.push(result);
    if (result.interrupted) break;
  }
  const reportDir = resolve(config.reportDir ?? join(root, 'reports', new Date().toISOString().replace(/[:.]/g, '-')));
  writeRunReport(reportDir, ctx, results, (Date.now() - started) / 1000);
  log(`[report] ${join(reportDir, 'report.html')} and metrics.json`);
  if (controller.signal.aborted) process.exitCode = 130;
}

function writeRunReport(dir: string, ctx: TrainContext, results: TrainedModel[], seconds: number): void {
  mkdirSync(dir, { recursive: true });
  const byId = new Map(ctx.split.validation.map((f) => [f.id, f]));
  const models = results.map((r) => {
    const metrics = evaluateMultiLabel({ probabilities: r.validationProbabilities, labels: r.validationLabels, thresholds: r.thresholds, genres: [...GENRES] });
    return { result: r, metrics };
  });
  // The table uses films every model saw, so the rows compare like with like.
  const common = results.length ? results.map((r) => new Set(r.validationIds)).reduce((a, b) => new Set([...a].filter((id) => b.has(id)))) : new Set<string>();
  const commonIds = [...common];
  const predictions: Record<string, Float32Array> = {};
  for (const r of results) {
    const index = new Map(r.validationIds.map((id, i) => [id, i]));
    const rows = new Float32Array(commonIds.length * GENRES.length);
    commonIds.forEach((id, i) => rows.set(r.validationProbabilities.subarray(index.get(id)! * GENRES.length, (index.get(id)! + 1) * GENRES.length), i * GENRES.length));
    predictions[r.name] = rows;
  }
  const table = randomFilmsTable({
    films: commonIds.map((id) => ({ id, truth: genresOf(byId.get(id)!.labels) })),
    predictions, genres: [...GENRES], count: 12, seed: ctx.config.seed,
  });
  const report: RunReport = {
    title: 'Film genre classifier: training run',
    createdAt: new Date().toISOString(),
    facts: {
      dataset: ctx.dataset.dir, films: ctx.dataset.summary.usable, 'bad rows': ctx.dataset.summary.bad,
      'train / validation': `${ctx.split.train.length} / ${ctx.split.validation.length}`, seed: ctx.config.seed,
      backend: `${ctx.backend.name} (${ctx.backend.threads} thread${ctx.backend.threads === 1 ? '' : 's'})`,
      'duration (min)': (seconds / 60).toFixed(1),
    },
    models: models.map(({ result, metrics }) => ({
      name: result.name, variant: result.variant, history: result.fit?.history ?? [], micro: metrics.micro, macro: metrics.macro, loss: metrics.loss,
      perGenre: metrics.perGenre.map((g, i) => ({ ...g, threshold: result.thresholds[i]! })), bestEpoch: result.fit?.bestEpoch, seconds: result.seconds,
    })),
    films: table.map((row) => ({ id: row.id, overview: byId.get(row.id)?.overview ?? '', truth: row.truth, predictions: row.predictions })),
  };
  writeFileAtomic(join(dir, 'metrics.json'), `${JSON.stringify({ ...report, models: models.map(({ result, metrics }) => ({ name: result.name, variant: result.variant, dir: result.dir, history: result.fit?.history ?? [], bestEpoch: result.fit?.bestEpoch, seconds: result.seconds, validation: metrics })) }, null, 2)}\n`);
  writeFileAtomic(join(dir, 'report.html'), renderReportHtml(report));
}
