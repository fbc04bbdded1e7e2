import { createRng, hashString, shuffleInPlace } from '@filmgenre/core';
import * as tf from '@tensorflow/tfjs';
import { exampleRng, resolveAugment, type AugmentOptions, type ResolvedAugment } from './augment.js';
import { posterTensor, writePoster } from './tensor.js';

export interface PosterBatch {
  /** [b, size, size, 3] float32 in [0, 1]. */
  xs: tf.Tensor4D;
  /** [b, numLabels] float32 0/1. */
  ys: tf.Tensor2D;
  /** Example indices into the pixels and labels given. */
  indices: number[];
}

interface EpochOptions {
  /** Reorder the examples each epoch (training); false keeps the given order (validation). */
  shuffle: boolean;
  /** Default 0. */
  seed?: number;
  /** Default 0. With shuffle, each (seed, epoch) gives its own order, the same on every run. */
  epoch?: number;
}

interface BatchingOptions extends EpochOptions {
  batchSize: number;
  /** Training-only augmentation (default false: validation and serving see the plain pixels). */
  augment?: AugmentOptions | false;
  /** Batches prepared ahead of the one being consumed (default 1). */
  prefetch?: number;
  /** Drop a last, smaller batch (default false). */
  dropRemainder?: boolean;
  /**
   * By default each batch's tensors are disposed when the next batch is requested and when the loop
   * ends (break included), so a training loop cannot leak them. true hands ownership to the caller.
   */
  keepTensors?: boolean;
}

export interface PosterBatchOptions extends BatchingOptions {
  /** n × size × size × 3 uint8 HWC (e.g. PosterSet.pixels). */
  pixels: Uint8Array;
  /** n × numLabels, 0/1 (e.g. PosterSet.labels) or any float targets. */
  labels: Float32Array | Uint8Array;
  size: number;
}

export interface PosterBatches extends AsyncIterable<PosterBatch> {
  numExamples: number;
  numBatches: number;
}

/** The example order of one epoch: identity without shuffle, else a seeded permutation of (seed, epoch). */
export function epochOrder(n: number, options: EpochOptions): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  if (!options.shuffle) return order;
  return shuffleInPlace(order, createRng(hashString(`shuffle:${options.seed ?? 0}:${options.epoch ?? 0}`)));
}

function checkBatching(options: BatchingOptions): { prefetch: number; augment: ResolvedAugment | null } {
  const { batchSize } = options;
  const prefetch = options.prefetch ?? 1;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(prefetch) || prefetch < 0) throw new RangeError(`prefetch must be a non-negative integer, got ${prefetch}`);
  return { prefetch, augment: resolveAugment(options.augment) };
}

/** Writes example `index` into slot `k` of a batch: augmented, or as it is. */
function fillExample(src: Uint8Array, srcOffset: number, xs: Float32Array, k: number, size: number, augment: ResolvedAugment | null, seed: number, epoch: number, index: number): void {
  writePoster(src, srcOffset, xs, k * size * size * 3, size, augment ? { augment: { options: augment, rng: exampleRng(seed, epoch, index) } } : {});
}

function toBatch(xs: Float32Array, ys: Float32Array, indices: number[], size: number, numLabels: number): PosterBatch {
  return { xs: posterTensor(xs, size), ys: tf.tensor2d(ys, [indices.length, numLabels], 'float32'), indices };
}

function disposeBatch(batch: PosterBatch | undefined): void {
  batch?.xs.dispose();
  batch?.ys.dispose();
}

/**
 * Batches from posters already decoded into memory (loadPosterSet): a seeded shuffle per epoch,
 * optional augmentation, and `prefetch` batches' float32 arrays prepared ahead in idle event-loop
 * time. Only the batches in flight are ever float32; the dataset stays uint8.
 * Iterate once per epoch: `for await (const { xs, ys } of createPosterBatches({ ..., epoch }))`.
 */
export function createPosterBatches(options: PosterBatchOptions): PosterBatches {
  const { pixels, labels, size, batchSize } = options;
  const { prefetch, augment } = checkBatching(options);
  const per = size * size * 3;
  if (!Number.isInteger(size) || size < 1 || pixels.length % per !== 0) {
    throw new RangeError(`pixels (${pixels.length} bytes) is not a whole number of ${size}×${size}×3 images`);
  }
  const n = pixels.length / per;
  if (n === 0) throw new RangeError('no examples');
  if (labels.length % n !== 0 || labels.length === 0) throw new RangeError(`labels has ${labels.length} values, not a multiple of ${n} examples`);
  const numLabels = labels.length / n;
  const seed = options.seed ?? 0;
  const epoch = options.epoch ?? 0;
  const numBatches = options.dropRemainder ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);

  // The epoch's order is computed on first use, once per iteration of this epoch's batches.
  let order: number[] | undefined;
  const prepare = (b: number) => {
    order ??= epochOrder(n, options);
    const indices = order.slice(b * batchSize, Math.min(n, (b + 1) * batchSize));
    const xs = new Float32Array(indices.length * per);
    const ys = new Float32Array(indices.length * numLabels);
    indices.forEach((index, k) => {
      fillExample(pixels, index * per, xs, k, size, augment, seed, epoch, index);
      for (let j = 0; j < numLabels; j++) ys[k * numLabels + j] = labels[index * numLabels + j]!;
    });
    return { xs, ys, indices };
  };

  return {
    numExamples: n,
    numBatches,
    async *[Symbol.asyncIterator]() {
      yield* runPrefetched(numBatches, prefetch, prepare, (p) => toBatch(p.xs, p.ys, p.indices, size, numLabels), options.keepTensors ?? false);
    },
  };
}

/** Runs prepare(b) for b ahead of consumption (on setImmediate, i.e. while the consumer awaits) and yields tensors in order. */
async function* runPrefetched<P>(
  numBatches: number, prefetch: number, prepare: (b: number) => P | Promise<P>, materialise: (p: P) => PosterBatch | undefined, keep: boolean,
): AsyncGenerator<PosterBatch> {
  const queue: Promise<P>[] = [];
  let scheduled = 0;
  const later = (b: number) => new Promise<P>((resolvePrepared, reject) => setImmediate(() => {
    Promise.resolve().then(() => prepare(b)).then(resolvePrepared, reject);
  }));
  let previous: PosterBatch | undefined;
  try {
    for (let b = 0; b < numBatches; b++) {
      const current = queue.length > 0 ? await queue.shift()! : await prepare(scheduled++);
      // Queue the next ones before handing this batch over, so they are built while it trains.
      while (queue.length < prefetch && scheduled < numBatches) queue.push(later(scheduled++));
      if (!keep) disposeBatch(previous);
      previous = materialise(current);
      if (previous) yield previous;
    }
  } finally {
    if (!keep) disposeBatch(previous);
    // Don't leave rejections from abandoned prefetches unhandled.
    for (const pending of queue) pending.catch(() => undefined);
  }
}
