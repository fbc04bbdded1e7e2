import * as tf from '@tensorflow/tfjs';
import { createRng, NUM_GENRES, shuffleInPlace } from '@filmgenre/core';

// Row selection lives in core, beside the films it indexes; re-exported for the recipes.
export { pickRows } from '@filmgenre/core';
import type { Batch } from './fit.js';

/** 0/1 labels of films as a flat n×genres float32 matrix (what the loss and metrics take). */
export function labelMatrix(films: readonly { labels: Uint8Array }[], numGenres = NUM_GENRES): Float32Array {
  const out = new Float32Array(films.length * numGenres);
  films.forEach((f, i) => out.set(f.labels, i * numGenres));
  return out;
}

/** Runs a model over flat feature rows in batches; returns n×outputs probabilities. */
export async function predictRows(model: tf.LayersModel, rows: Float32Array, dim: number, batchSize = 256): Promise<Float32Array> {
  const n = rows.length / dim;
  const outputs = model.outputs[0]!.shape.at(-1) as number;
  const out = new Float32Array(n * outputs);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const probs = tf.tidy(() => model.predict(tf.tensor2d(rows.subarray(start * dim, (start + count) * dim), [count, dim])) as tf.Tensor);
    out.set((await probs.data()) as Float32Array, start * outputs);
    probs.dispose();
  }
  return out;
}

/** The shuffled order of one epoch, a function of (seed, epoch) alone, so a resumed epoch replays it. */
export function epochRng(seed: number, epoch: number) {
  return createRng(seed * 7919 + epoch);
}

/**
 * Seeded shuffled batches of feature rows for one epoch. `mirrored` holds the same films' features
 * of a second view (mirrored posters): each film's view is drawn with even odds per epoch.
 */
export async function* featureRowBatches(
  options: { features: Float32Array; mirrored?: Float32Array; labels: Float32Array; dim: number; batchSize: number; seed: number; epoch: number },
): AsyncGenerator<Batch> {
  const { features, labels, dim, batchSize } = options;
  const k = NUM_GENRES;
  const n = labels.length / k;
  const rng = epochRng(options.seed, options.epoch);
  const order = shuffleInPlace(Array.from({ length: n }, (_, i) => i), rng);
  const mirrored = options.mirrored;
  for (let start = 0; start < n; start += batchSize) {
    const rows = order.slice(start, start + batchSize);
    const xs = new Float32Array(rows.length * dim);
    const ys = new Float32Array(rows.length * k);
    rows.forEach((r, i) => {
      const source = mirrored && rng() < 0.5 ? mirrored : features;
      xs.set(source.subarray(r * dim, (r + 1) * dim), i * dim);
      ys.set(labels.subarray(r * k, (r + 1) * k), i * k);
    });
    yield { xs: tf.tensor2d(xs, [rows.length, dim]), ys: tf.tensor2d(ys, [rows.length, k]) };
  }
}
