import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { findWorkspaceRoot, formatBadRows, GENRES, NUM_GENRES, readDataset, resolveDatasetDir } from '@filmgenre/core';
import { initBackend, writeFileAtomic } from '@filmgenre/tf-runtime';
import { loadPosterClassifier } from '@filmgenre/model-cnn';
import { loadOverviewClassifier } from '@filmgenre/model-lstm';
import { loadFusionClassifier } from '@filmgenre/model-fusion';
import { evaluateMultiLabel } from '@filmgenre/metrics';
import type { EvaluateConfig } from './config.js';
import { labelMatrix } from './tasks/context.js';
import { modalityOutputs } from './tasks/fusion.js';

type Evaluation = ReturnType<typeof evaluateMultiLabel>;

/** The documented per-model summary: the headline numbers first, then everything else. */
function summarise(evaluation: Evaluation, variant: string, n: number) {
  return {
    variant,
    n,
    loss: evaluation.loss,
    microPrecision: evaluation.micro.precision,
    microRecall: evaluation.micro.recall,
    microF1: evaluation.micro.f1,
    macroF1: evaluation.macro.f1,
    macroPrecision: evaluation.macro.precision,
    macroRecall: evaluation.macro.recall,
    weightedF1: evaluation.weighted.f1,
    samplesF1: evaluation.samples.f1,
    subsetAccuracy: evaluation.subsetAccuracy,
    hammingLoss: evaluation.hammingLoss,
    perGenre: Object.fromEntries(evaluation.perGenre.map((g) => [g.genre, g])),
  };
}

/**
 * Scores saved models on any dataset directory in the documented layout, with the thresholds stored
 * in each artifact. Every model is scored on the films whose poster decodes (the same films for all).
 */
export async function evaluate(config: EvaluateConfig): Promise<void> {
  const log = (line: string) => console.error(line);
  await initBackend(config.backend);
  const modelsDir = resolve(config.models);
  const dataDir = resolveDatasetDir(config.data);
  const dataset = readDataset(dataDir, config.limit ? { limit: config.limit } : {});
  log(`[data] ${dataDir}: ${formatBadRows(dataset)}`);
  for (const name of ['cnn', 'lstm']) {
    if (!existsSync(join(modelsDir, name))) throw new Error(`${join(modelsDir, name)}: model directory not found (train it with \`npx nx train trainer\`)`);
  }
  const poster = await loadPosterClassifier(join(modelsDir, 'cnn'));
  const overview = await loadOverviewClassifier(join(modelsDir, 'lstm'));
  const cacheDir = config.cacheDir ? resolve(config.cacheDir) : join(findWorkspaceRoot(), '.cache');
  const outputs = await modalityOutputs(poster, overview, dataset.films, cacheDir);
  if (outputs.films.length < dataset.films.length) log(`[data] ${dataset.films.length - outputs.films.length} film(s) skipped: poster could not be decoded`);
  const labels = labelMatrix(outputs.films, NUM_GENRES);
  const genres = [...GENRES];
  const n = outputs.films.length;
  const models: Record<string, ReturnType<typeof summarise>> = {
    cnn: summarise(evaluateMultiLabel({ probabilities: outputs.image.probabilities, labels, thresholds: poster.metadata.thresholds, genres }), poster.metadata.variant, n),
    lstm: summarise(evaluateMultiLabel({ probabilities: outputs.text.probabilities, labels, thresholds: overview.metadata.thresholds, genres }), overview.metadata.variant, n),
  };
  if (existsSync(join(modelsDir, 'fusion'))) {
    const fusion = await loadFusionClassifier(join(modelsDir, 'fusion'));
    const probabilities = await fusion.predict({ image: outputs.image, text: outputs.text });
    models['fusion'] = summarise(evaluateMultiLabel({ probabilities, labels, thresholds: fusion.metadata.thresholds, genres }), fusion.metadata.variant, n);
    fusion.dispose();
  }
  poster.dispose();
  overview.dispose();
  const result = { n, dataset: dataDir, badRows: dataset.badRows, models };
  const json = `${JSON.stringify(result, null, 2)}\n`;
  if (config.output) {
    writeFileAtomic(resolve(config.output), json);
    log(`[evaluate] wrote ${resolve(config.output)}`);
  } else {
    process.stdout.write(json);
  }
  for (const [name, m] of Object.entries(models)) {
    log(`[evaluate] ${name.padEnd(6)} n=${n} loss ${m.loss.toFixed(4)} micro P ${m.microPrecision.toFixed(3)} R ${m.microRecall.toFixed(3)} F1 ${m.microF1.toFixed(3)} | macro F1 ${m.macroF1.toFixed(3)}`);
  }
}
