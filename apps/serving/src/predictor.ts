import type { ServingConfig } from './config.js';
import type { ServingMetrics } from './metrics.js';
import { MicroBatcher, type BatchedResult } from './micro-batcher.js';
import type { FusionInput, ModalityOutput, ModelKey, ServingModels, WithFeatures } from './models.js';

export interface ModelRun {
  probabilities: Float32Array;
  batchSize: number;
  waitMs: number;
  runMs: number;
}

export interface Predictions {
  cnn?: ModelRun;
  lstm?: ModelRun;
  fusion?: ModelRun;
}

interface FeatureRun extends ModelRun {
  features: Float32Array;
}

/**
 * A model answered with a probability that is not a number in [0, 1] (NaN or ±Infinity from broken
 * weights, an overflow): never sent as `null`, but as a 500 with its own code, logged with the model.
 */
export class ModelOutputError extends Error {
  override name = 'ModelOutputError';
  constructor(
    readonly model: ModelKey,
    readonly modelName: string,
    /** How many of the item's probabilities are invalid, and the first of them. */
    readonly invalid: number,
    readonly example: number,
    context: string,
  ) {
    super(`${model} model '${modelName}' produced ${invalid} invalid probabilit${invalid === 1 ? 'y' : 'ies'} (e.g. ${example}) ${context}`);
  }
}

/** Throws ModelOutputError unless every value is a finite probability. */
export function checkProbabilities(model: ModelKey, modelName: string, probabilities: Float32Array, context: string): void {
  let invalid = 0;
  let example = 0;
  for (const p of probabilities) {
    if (!(p >= 0 && p <= 1)) {
      if (invalid === 0) example = p;
      invalid++;
    }
  }
  if (invalid > 0) throw new ModelOutputError(model, modelName, invalid, example, context);
}

/** Copies item i out of a row-major n×dim buffer (a copy, so the batch buffer can be freed). */
function row(flat: Float32Array, i: number, dim: number): Float32Array {
  return flat.slice(i * dim, (i + 1) * dim);
}

function concatRows(rows: Float32Array[]): Float32Array {
  const dim = rows[0]?.length ?? 0;
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => out.set(r, i * dim));
  return out;
}

/** Per-item outputs back into the row-major n×dim layout the model packages use. */
function stack(outputs: ModalityOutput[]): FusionInput {
  return {
    probabilities: concatRows(outputs.map((o) => o.probabilities)),
    features: concatRows(outputs.map((o) => o.features)),
    featureDim: outputs[0]?.features.length ?? 0,
  };
}

function splitWithFeatures(result: WithFeatures, n: number): ModalityOutput[] {
  const classes = result.probabilities.length / n;
  if (!Number.isInteger(classes) || result.features.length !== n * result.featureDim) {
    throw new Error(`model returned ${result.probabilities.length} probabilities and ${result.features.length} features for ${n} inputs`);
  }
  return Array.from({ length: n }, (_, i) => ({
    probabilities: row(result.probabilities, i, classes),
    features: row(result.features, i, result.featureDim),
  }));
}

/**
 * Runs the loaded models behind one micro-batcher each. Posters and overviews of concurrent
 * requests are stacked into one forward pass per model; the fusion model then combines both
 * modalities' probabilities and features, itself batched.
 */
export class Predictor {
  private readonly cnn: MicroBatcher<Uint8Array, ModalityOutput>;
  private readonly lstm: MicroBatcher<string, ModalityOutput>;
  private readonly fusion: MicroBatcher<{ image: ModalityOutput; text: ModalityOutput }, Float32Array> | undefined;
  private readonly metrics: ServingMetrics | undefined;

  constructor(
    readonly models: ServingModels,
    config: Pick<ServingConfig, 'batchWindowMs' | 'maxBatch' | 'batchMaxWaitMs'> & Partial<Pick<ServingConfig, 'maxPosterBatch'>>,
    metrics?: ServingMetrics,
    /** Requests parsed or decoded right now, which will reach the batchers soon. */
    incoming?: () => number,
  ) {
    const common = (model: ModelKey) => ({
      maxBatch: model === 'cnn' ? Math.min(config.maxBatch, config.maxPosterBatch ?? config.maxBatch) : config.maxBatch,
      windowMs: config.batchWindowMs,
      concurrency: model === 'cnn' ? (models.cnn.parallelism ?? 1) : 1,
      // Fusion runs after both modalities, so nothing upstream is worth waiting for there.
      ...(incoming && model !== 'fusion' ? { incoming, maxWaitMs: config.batchMaxWaitMs } : {}),
      onBatch: (info: { size: number; runMs: number }) => {
        metrics?.inferenceDuration.observe({ model }, info.runMs / 1000);
        metrics?.batchSize.observe({ model }, info.size);
      },
    });
    const fusionLoaded = Boolean(models.fusion);
    // Features are only needed to feed the fusion model; without one, the cheaper predict() is used.
    this.cnn = new MicroBatcher({
      ...common('cnn'),
      run: async (posters) => fusionLoaded
        ? splitWithFeatures(await models.cnn.predictWithFeatures(posters), posters.length)
        : splitProbabilities(await models.cnn.predict(posters), posters.length),
    });
    this.lstm = new MicroBatcher({
      ...common('lstm'),
      run: async (overviews) => fusionLoaded
        ? splitWithFeatures(await models.lstm.predictWithFeatures(overviews), overviews.length)
        : splitProbabilities(await models.lstm.predict(overviews), overviews.length),
    });
    const fusion = models.fusion;
    this.fusion = fusion
      ? new MicroBatcher({
          ...common('fusion'),
          run: async (items) => {
            const probabilities = await fusion.predict({
              image: stack(items.map((x) => x.image)),
              text: stack(items.map((x) => x.text)),
            });
            return splitProbabilities(probabilities, items.length).map((o) => o.probabilities);
          },
        })
      : undefined;
    this.metrics = metrics;
  }

  /** `poster` is already decoded to the CNN's input size (size × size × 3 bytes). */
  async predict(input: { poster?: Uint8Array; overview?: string }): Promise<Predictions> {
    const [image, text] = await Promise.all([
      input.poster ? this.observe('cnn', this.cnn.submitWithInfo(input.poster)) : undefined,
      input.overview !== undefined ? this.observe('lstm', this.lstm.submitWithInfo(input.overview)) : undefined,
    ]);
    const out: Predictions = {};
    if (image) out.cnn = image;
    if (text) out.lstm = text;
    if (image && text && this.fusion) {
      const fused = await this.observe('fusion', this.fusion.submitWithInfo({ image, text }));
      out.fusion = fused;
    }
    return out;
  }

  /**
   * One forward pass per model on a blank input, outside the batchers and metrics: the first call
   * of a tfjs model pays for weight upload and kernel set-up, which no client should wait for.
   */
  async warmUp(): Promise<void> {
    const { cnn, lstm, fusion } = this.models;
    const blank = new Uint8Array(cnn.imageSize * cnn.imageSize * 3);
    // Concurrent calls, so that each poster worker gets one.
    const posterCalls = cnn.parallelism ?? 1;
    // A model that answers NaN to the warm-up (weights that load but are garbage) must not serve.
    const check = (model: ModelKey, probabilities: Float32Array) => checkProbabilities(model, this.models[model]!.metadata.name, probabilities, 'at warm-up');
    if (fusion) {
      const [images, text] = await Promise.all([
        Promise.all(Array.from({ length: posterCalls }, () => cnn.predictWithFeatures([blank]))),
        lstm.predictWithFeatures(['warm up']),
      ]);
      images.forEach((image) => check('cnn', image.probabilities));
      check('lstm', text.probabilities);
      check('fusion', await fusion.predict({ image: images[0]!, text }));
    } else {
      const [images, text] = await Promise.all([Promise.all(Array.from({ length: posterCalls }, () => cnn.predict([blank]))), lstm.predict(['warm up'])]);
      images.forEach((probabilities) => check('cnn', probabilities));
      check('lstm', text);
    }
  }

  /** Answers everything queued, then refuses new work. */
  async close(): Promise<void> {
    await Promise.all([this.cnn.close(), this.lstm.close(), this.fusion?.close()]);
  }

  private async observe<T extends ModalityOutput | Float32Array>(model: ModelKey, pending: Promise<BatchedResult<T>>): Promise<FeatureRun> {
    const result = await pending;
    this.metrics?.queueWait.observe({ model }, result.waitMs / 1000);
    const value = result.value;
    const { probabilities, features } = value instanceof Float32Array ? { probabilities: value, features: new Float32Array(0) } : value;
    try {
      checkProbabilities(model, this.models[model]!.metadata.name, probabilities, 'for a request');
    } catch (error) {
      this.metrics?.invalidOutputs.inc({ model });
      throw error;
    }
    return { probabilities, features, batchSize: result.batchSize, waitMs: result.waitMs, runMs: result.runMs };
  }
}

function splitProbabilities(flat: Float32Array, n: number): ModalityOutput[] {
  const classes = flat.length / n;
  if (!Number.isInteger(classes) || classes === 0) throw new Error(`model returned ${flat.length} probabilities for ${n} inputs`);
  return Array.from({ length: n }, (_, i) => ({ probabilities: row(flat, i, classes), features: new Float32Array(0) }));
}
