import { assertFinite, NonFiniteOutputError } from '@filmgenre/model-artifact';
import type { ServingConfig } from './config.js';
import type { ServingMetrics } from './metrics.js';
import { MicroBatcher, type BatchedResult } from './micro-batcher.js';
import { sizeKey, type FusionModel, type ModalityOutput, type PosterSize, type ServingModels } from './models.js';

export interface ModelRun {
  probabilities: Float32Array;
  batchSize: number;
  waitMs: number;
  runMs: number;
}

/** The runs of the models that answered a request, by model key: members in directory order, then the fusion. */
export type Predictions = Record<string, ModelRun>;

export interface PredictInput {
  /** The poster decoded at each poster model's input size, by `sizeKey` (see `Predictor.posterSizes`). */
  posters?: Readonly<Record<string, Uint8Array>>;
  overview?: string;
}

interface FeatureRun extends ModelRun {
  features: Float32Array;
  featureDim: number;
}

/**
 * A model answered with a probability that is not a number in [0, 1] (NaN or ±Infinity from broken
 * weights, an overflow): never sent as `null`, but as a 500 with its own code, logged with the model.
 */
export class ModelOutputError extends Error {
  override name = 'ModelOutputError';
  /** How many of the item's probabilities are invalid, and the first of them. */
  readonly invalid: number;
  readonly example: number;
  constructor(
    /** The model's key (its directory name). */
    readonly model: string,
    readonly modelName: string,
    cause: NonFiniteOutputError,
  ) {
    super(`${model} model '${modelName}' produced ${cause.invalid} invalid probabilit${cause.invalid === 1 ? 'y' : 'ies'} (e.g. ${cause.example}) for a request`, { cause });
    this.invalid = cause.invalid;
    this.example = cause.example;
  }
}

/**
 * Overviews longer than this (in UTF-16 units) are run in a lane of their own, one at a time, beside
 * the lane of the usual ones (a few hundred characters): a 10,000-character overview costs the
 * encoder about 0.5 s (up to its 4,096-piece bound), and in a shared batch every short overview would
 * wait for it. With model workers, the two lanes' calls go to the overview model's two workers
 * (inference/worker-models.ts); inline, the encoder yields between its calls of at most 512 pieces,
 * so a short overview waits for one of them at most.
 */
export const LONG_OVERVIEW_CHARS = 1_000;
/**
 * The long-overview lane rests as long as it ran before it starts the next one, so that a flood of
 * long overviews takes at most half a core from the posters and the usual overviews.
 */
const LONG_OVERVIEW_REST = 1;

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
function stack(outputs: ModalityOutput[]): ModalityOutput {
  return {
    probabilities: concatRows(outputs.map((o) => o.probabilities)),
    features: concatRows(outputs.map((o) => o.features)),
    featureDim: outputs[0]?.featureDim ?? 0,
  };
}

function splitWithFeatures(result: ModalityOutput, n: number): ModalityOutput[] {
  const classes = result.probabilities.length / n;
  if (!Number.isInteger(classes) || result.features.length !== n * result.featureDim) {
    throw new Error(`model returned ${result.probabilities.length} probabilities and ${result.features.length} features for ${n} inputs`);
  }
  return Array.from({ length: n }, (_, i) => ({
    probabilities: row(result.probabilities, i, classes),
    features: row(result.features, i, result.featureDim),
    featureDim: result.featureDim,
  }));
}

function splitProbabilities(flat: Float32Array, n: number): ModalityOutput[] {
  const classes = flat.length / n;
  if (!Number.isInteger(classes) || classes === 0) throw new Error(`model returned ${flat.length} probabilities for ${n} inputs`);
  return Array.from({ length: n }, (_, i) => ({ probabilities: row(flat, i, classes), features: new Float32Array(0), featureDim: 0 }));
}

/**
 * Runs the loaded models behind one micro-batcher each. Posters and overviews of concurrent
 * requests are stacked into one forward pass per model: every poster model gets the poster (decoded
 * at its own input size), every overview model the overview; the fusion model then combines its
 * members' outputs once all of them have answered, itself batched.
 */
export class Predictor {
  private readonly images = new Map<string, { size: PosterSize; batcher: MicroBatcher<Uint8Array, ModalityOutput> }>();
  private readonly texts = new Map<string, { short: MicroBatcher<string, ModalityOutput>; long: MicroBatcher<string, ModalityOutput> }>();
  private readonly fusion: { model: FusionModel; batcher: MicroBatcher<Record<string, ModalityOutput>, Float32Array> } | undefined;
  private readonly metrics: ServingMetrics | undefined;
  /** Predictions whose members are still running: they will reach the fusion's lane shortly. */
  private awaitingMembers = 0;
  /** The distinct input sizes of the poster models: a poster is decoded once per size. */
  readonly posterSizes: PosterSize[];

  constructor(
    readonly models: ServingModels,
    config: Pick<ServingConfig, 'batchWindowMs' | 'maxBatch' | 'batchMaxWaitMs'> & Partial<Pick<ServingConfig, 'maxPosterBatch'>>,
    metrics?: ServingMetrics,
    /** Requests parsed or decoded right now, which will reach the batchers soon. */
    incoming?: () => number,
  ) {
    const common = (key: string, options: { poster: boolean; parallelism: number; upstream: boolean; fusion?: boolean }) => ({
      maxBatch: options.poster ? Math.min(config.maxBatch, config.maxPosterBatch ?? config.maxBatch) : config.maxBatch,
      windowMs: config.batchWindowMs,
      concurrency: options.parallelism,
      // The members' lanes wait (up to batchMaxWaitMs) for requests uploaded and decoding in-process;
      // the fusion's, for requests whose members are still running (its window, no longer).
      ...(incoming && options.upstream ? { incoming, maxWaitMs: config.batchMaxWaitMs } : {}),
      ...(options.fusion ? { incoming: () => this.awaitingMembers } : {}),
      onBatch: (info: { size: number; runMs: number }) => {
        metrics?.inferenceDuration.observe({ model: key }, info.runMs / 1000);
        metrics?.batchSize.observe({ model: key }, info.size);
      },
    });
    // Features are only needed to feed the fusion model; members outside it use the cheaper predict().
    const fused = new Set(models.fusion?.members ?? []);
    const sizes = new Map<string, PosterSize>();
    for (const [key, member] of Object.entries(models.members)) {
      const withFeatures = fused.has(key);
      if (member.modality === 'image') {
        const model = member.model;
        const size = { width: model.inputWidth, height: model.inputHeight };
        sizes.set(sizeKey(size), size);
        this.images.set(key, {
          size,
          batcher: new MicroBatcher({
            ...common(key, { poster: true, parallelism: model.parallelism ?? 1, upstream: true }),
            run: async (posters) => withFeatures
              ? splitWithFeatures(await model.predictWithFeatures(posters), posters.length)
              : splitProbabilities(await model.predict(posters), posters.length),
          }),
        });
      } else {
        const model = member.model;
        const run = async (overviews: string[]) => withFeatures
          ? splitWithFeatures(await model.predictWithFeatures(overviews), overviews.length)
          : splitProbabilities(await model.predict(overviews), overviews.length);
        this.texts.set(key, {
          short: new MicroBatcher({ ...common(key, { poster: false, parallelism: 1, upstream: true }), run }),
          long: new MicroBatcher({ ...common(key, { poster: false, parallelism: 1, upstream: false }), maxBatch: 1, restRatio: LONG_OVERVIEW_REST, run }),
        });
      }
    }
    this.posterSizes = [...sizes.values()];
    const fusion = models.fusion;
    this.fusion = fusion
      ? {
          model: fusion,
          batcher: new MicroBatcher({
            ...common(fusion.metadata.name, { poster: false, parallelism: 1, upstream: false, fusion: true }),
            run: async (items) => {
              const outputs = Object.fromEntries(fusion.members.map((m) => [m, stack(items.map((item) => item[m]!))]));
              return splitProbabilities(await fusion.predict(outputs), items.length).map((o) => o.probabilities);
            },
          }),
        }
      : undefined;
    this.metrics = metrics;
  }

  /** Whether any model takes posters (a poster sent to a server without one is not decoded). */
  get takesPosters(): boolean {
    return this.images.size > 0;
  }

  /** Whether any model takes overviews. */
  get takesOverviews(): boolean {
    return this.texts.size > 0;
  }

  /**
   * Every poster model gets the poster at its input size, every overview model the overview (all at
   * once); then the fusion, when each of its members answered.
   */
  async predict(input: PredictInput): Promise<Predictions> {
    const pending = new Map<string, Promise<FeatureRun>>();
    for (const [key, lane] of this.images) {
      const pixels = input.posters?.[sizeKey(lane.size)];
      if (pixels) pending.set(key, this.observe(key, lane.batcher.submitWithInfo(pixels)));
    }
    const overview = input.overview;
    if (overview !== undefined) for (const [key, lanes] of this.texts) pending.set(key, this.observe(key, this.textLane(lanes, overview).submitWithInfo(overview)));
    let settled: FeatureRun[];
    this.awaitingMembers++;
    try {
      settled = await Promise.all([...pending.values()]);
    } finally {
      this.awaitingMembers--;
    }
    const byKey = new Map([...pending.keys()].map((key, i) => [key, settled[i]!]));
    const out: Predictions = {};
    for (const key of Object.keys(this.models.members)) {
      const run = byKey.get(key);
      if (run) out[key] = run;
    }
    const fusion = this.fusion;
    if (fusion && fusion.model.members.every((m) => byKey.has(m))) {
      const item = Object.fromEntries(fusion.model.members.map((m) => {
        const run = byKey.get(m)!;
        return [m, { probabilities: run.probabilities, features: run.features, featureDim: run.featureDim }];
      }));
      out[fusion.model.metadata.name] = await this.observe(fusion.model.metadata.name, fusion.batcher.submitWithInfo(item));
    }
    return out;
  }

  /**
   * How long the models would take to start on this input, at most over the lanes it would enter
   * (see MicroBatcher.backlogMs): the estimate admission control compares with its deadline.
   */
  backlogMs(input: { poster: boolean; overview?: string }): number {
    let wait = 0;
    if (input.poster) for (const lane of this.images.values()) wait = Math.max(wait, lane.batcher.backlogMs);
    const overview = input.overview;
    if (overview !== undefined) for (const lanes of this.texts.values()) wait = Math.max(wait, this.textLane(lanes, overview).backlogMs);
    return wait;
  }

  private textLane<T>(lanes: { short: T; long: T }, overview: string): T {
    return overview.length > LONG_OVERVIEW_CHARS ? lanes.long : lanes.short;
  }

  /** Answers everything queued, then refuses new work. */
  async close(): Promise<void> {
    await Promise.all([
      ...[...this.images.values()].map((lane) => lane.batcher.close()),
      ...[...this.texts.values()].flatMap((lanes) => [lanes.short.close(), lanes.long.close()]),
      this.fusion?.batcher.close(),
    ]);
  }

  private async observe<T extends ModalityOutput | Float32Array>(key: string, pending: Promise<BatchedResult<T>>): Promise<FeatureRun> {
    const result = await pending;
    this.metrics?.queueWait.observe({ model: key }, result.waitMs / 1000);
    const value = result.value;
    const { probabilities, features, featureDim } = value instanceof Float32Array ? { probabilities: value, features: new Float32Array(0), featureDim: 0 } : value;
    const name = key === this.models.fusion?.metadata.name ? this.models.fusion.metadata.name : this.models.members[key]!.model.metadata.name;
    try {
      assertFinite(probabilities, probabilities.length, `${key} model`, { probabilities: true });
    } catch (error) {
      if (!(error instanceof NonFiniteOutputError)) throw error;
      this.metrics?.invalidOutputs.inc({ model: key });
      throw new ModelOutputError(key, name, error);
    }
    return { probabilities, features, featureDim, batchSize: result.batchSize, waitMs: result.waitMs, runMs: result.runMs };
  }
}
