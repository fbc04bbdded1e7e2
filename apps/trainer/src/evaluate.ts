import { dirname, join, resolve } from 'node:path';
import { assertWritableDir, defaultCacheRoot, findWorkspaceRoot, formatBadRows, readDataset, resolveDatasetDir, writeFileAtomic, yieldToEventLoop } from '@filmgenre/core';
import { evaluateMultiLabel } from '@filmgenre/metrics';
import { openModelDir, type ModelMetadata } from '@filmgenre/model-artifact';
import { openModelsDir, predictModels } from '@filmgenre/model-registry';
import { labelMatrix } from '@filmgenre/training';
import { initBackend } from '@filmgenre/tf-runtime';
import type { EvaluateConfig } from './config.js';

type Evaluation = ReturnType<typeof evaluateMultiLabel>;

/** The documented per-model summary: the headline numbers first, then everything else. */
function summarise(evaluation: Evaluation, metadata: ModelMetadata, n: number) {
  return {
    variant: metadata.variant,
    modality: metadata.modality,
    n,
    loss: evaluation.loss,
    microPrecision: evaluation.micro.precision,
    microRecall: evaluation.micro.recall,
    microF1: evaluation.micro.f1,
    /** Mean F1 over the genres with at least one positive among the scored films. */
    macroF1: evaluation.macro.f1,
    /** Mean F1 over all genres (scikit-learn's average='macro'; a genre without positives scores 0). */
    macroF1AllGenres: evaluation.macroAllGenres.f1,
    macroPrecision: evaluation.macro.precision,
    macroRecall: evaluation.macro.recall,
    weightedF1: evaluation.weighted.f1,
    samplesF1: evaluation.samples.f1,
    subsetAccuracy: evaluation.subsetAccuracy,
    hammingLoss: evaluation.hammingLoss,
    perGenre: Object.fromEntries(evaluation.perGenre.map((g) => [g.genre, g])),
  };
}

/** How many of the scored films a model trained or was validated on (its films.json), for a warning. */
function overlapOf(dir: string, ids: ReadonlySet<string>): { trainedOn: number; validatedOn: number } {
  const films = openModelDir(dir).films();
  return { trainedOn: films.train.filter((id) => ids.has(id)).length, validatedOn: films.heldOut.filter((id) => ids.has(id)).length };
}

/**
 * Scores every model of a models directory on any dataset directory in the documented layout, with
 * the thresholds stored in each model. All models are scored on the same films: those whose poster
 * decodes. Warns when the films overlap the ones a model was trained or validated on. A stop request
 * (`signal`) ends it within about a second, writing nothing, with exit code 130.
 */
export async function evaluate(config: EvaluateConfig, signal: AbortSignal): Promise<void> {
  try {
    await scoreModels(config, signal);
  } catch (error) {
    if (!signal.aborted) throw error;
    console.error('[evaluate] stopped: nothing was written');
    process.exitCode = 130;
  }
}

async function scoreModels(config: EvaluateConfig, signal: AbortSignal): Promise<void> {
  const log = (line: string) => console.error(line);
  if (config.output) assertWritableDir(dirname(resolve(config.output)), '--output');
  await initBackend(config.backend);
  const dataDir = resolveDatasetDir(config.data);
  const dataset = readDataset(dataDir, config.limit ? { limit: config.limit } : {});
  log(`[data] ${dataDir}: ${formatBadRows(dataset)}`);
  const cacheDir = config.cacheDir ? resolve(config.cacheDir) : defaultCacheRoot(findWorkspaceRoot());
  const opened = await openModelsDir(config.models, { signal });
  const { members, fusion, dir: modelsDir } = opened;
  for (const [key, reason] of Object.entries(opened.unavailable)) log(`[evaluate] warning: ${key} is not scored: ${reason}`);
  try {
    // Each member on every film it can take, then the films all members scored, then the fusion.
    const predicted = await predictModels(opened, dataset.films, { cacheDir, signal });
    for (const key of Object.keys(members)) {
      const skipped = predicted.skipped.filter((s) => s.model === key);
      if (skipped.length) log(`[data] ${key}: ${skipped.length} film(s) skipped, e.g. ${skipped[0]!.id}: ${skipped[0]!.reason}`);
    }
    if (predicted.ids.length === 0) throw new Error(`no film of ${dataDir} could be scored by every model`);
    const ids = new Set(predicted.ids);
    const labels = labelMatrix(dataset.films.filter((f) => ids.has(f.id)));
    const n = ids.size;
    const models: Record<string, ReturnType<typeof summarise>> = {};
    for (const [key, probabilities] of Object.entries(predicted.probabilities)) {
      const { metadata } = fusion?.metadata.name === key ? fusion : members[key]!;
      models[key] = summarise(evaluateMultiLabel({ probabilities, labels, thresholds: metadata.thresholds }), metadata, n);
    }
    const overlap: Record<string, { trainedOn: number; validatedOn: number }> = {};
    for (const key of Object.keys(models)) {
      overlap[key] = overlapOf(join(modelsDir, key), ids);
      const o = overlap[key]!;
      if (o.trainedOn || o.validatedOn) {
        log(`[evaluate] warning: ${key} trained on ${o.trainedOn} and was validated on ${o.validatedOn} of these ${n} films: its scores here are not held-out`);
      }
    }
    await yieldToEventLoop();
    signal.throwIfAborted();
    const result = { n, dataset: dataDir, badRows: dataset.badRows, models, overlap };
    const json = `${JSON.stringify(result, null, 2)}\n`;
    if (config.output) {
      writeFileAtomic(resolve(config.output), json);
      log(`[evaluate] wrote ${resolve(config.output)}`);
    } else {
      process.stdout.write(json);
    }
    for (const [name, m] of Object.entries(models)) {
      log(`[evaluate] ${name.padEnd(8)} n=${n} loss ${m.loss.toFixed(4)} micro P ${m.microPrecision.toFixed(3)} R ${m.microRecall.toFixed(3)} F1 ${m.microF1.toFixed(3)} | macro F1 ${m.macroF1.toFixed(3)} (present genres), ${m.macroF1AllGenres.toFixed(3)} (all genres)`);
    }
  } finally {
    opened.dispose();
  }
}
