import * as tf from '@tensorflow/tfjs';
import { VectorCache } from '@filmgenre/core';
import { decodePoster, DECODER_VERSION } from '@filmgenre/data-images';
import { readFile } from 'node:fs/promises';
import type { PosterFeatureExtractor } from './feature-extractor.js';

export interface PosterFeatureOptions {
  /** Cache features on disk here (see `VectorCache`); none if omitted. */
  cacheDir?: string;
  /** Mirror every poster left-right before the trunk (augmentation for a head on frozen features). */
  flip?: boolean;
  /** Posters per forward pass (default 32). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * What a cached poster feature row depends on besides the poster's bytes: the extractor (trunk files,
 * nodes, poolings, input size, input range), the decoding recipe (sharp/libvips build, resize mode)
 * and the flip.
 */
export function posterFeatureIdentity(extractor: PosterFeatureExtractor, flip: boolean): string {
  return `poster-features|${extractor.identity}|${JSON.stringify(extractor.spec)}|${DECODER_VERSION}|${flip ? 'flip' : 'plain'}`;
}

/**
 * Features of posters given as file paths or encoded bytes: n × featureDim float32, row-major, in
 * input order. Cached rows are keyed by `posterFeatureIdentity` + the poster's exact bytes, so an
 * edited poster, another decoder build or another extractor setting is recomputed, never served
 * stale. Misses are decoded with sharp to the extractor's W×H (stretched, as `decodePoster` does) and
 * run in batches; the next batch decodes while the current one runs.
 */
export async function extractPosterFeatures(
  extractor: PosterFeatureExtractor, posters: readonly (string | Uint8Array)[], options: PosterFeatureOptions = {},
): Promise<Float32Array> {
  const flip = options.flip ?? false;
  const batchSize = options.batchSize ?? 32;
  const dim = extractor.featureDim;
  const { inputWidth: width, inputHeight: height } = extractor;
  const cache = options.cacheDir ? new VectorCache(options.cacheDir, { identity: posterFeatureIdentity(extractor, flip), dim }) : undefined;
  const out = new Float32Array(posters.length * dim);
  const bytes = await Promise.all(posters.map(async (p) => (typeof p === 'string' ? new Uint8Array(await readFile(p)) : p)));
  const keys = cache ? bytes.map((b) => cache.key(b)) : [];
  const todo: number[] = [];
  bytes.forEach((_, i) => {
    const hit = cache?.get(keys[i]!);
    if (hit) out.set(hit, i * dim);
    else todo.push(i);
  });
  const decodeBatch = (start: number) => Promise.all(todo.slice(start, start + batchSize).map((i) => {
    const name = typeof posters[i] === 'string' ? (posters[i] as string) : `poster ${i}`;
    return decodePoster(Buffer.from(bytes[i]!.buffer, bytes[i]!.byteOffset, bytes[i]!.byteLength), { width, height, name });
  }));
  const per = width * height * 3;
  let next = todo.length > 0 ? decodeBatch(0) : undefined;
  for (let start = 0; start < todo.length; start += batchSize) {
    if (options.signal?.aborted) throw new Error('interrupted while computing poster features');
    const pixels = await next!;
    next = start + batchSize < todo.length ? decodeBatch(start + batchSize) : undefined;
    const flat = new Uint8Array(pixels.length * per);
    pixels.forEach((p, j) => flat.set(p, j * per));
    const features = tf.tidy(() => {
      const x = tf.div(tf.tensor4d(flat, [pixels.length, height, width, 3], 'int32').toFloat(), 255) as tf.Tensor4D;
      return extractor.extract(x, { flip });
    });
    const values = (await features.data()) as Float32Array;
    features.dispose();
    pixels.forEach((_, j) => {
      const i = todo[start + j]!;
      const row = values.subarray(j * dim, (j + 1) * dim);
      out.set(row, i * dim);
      cache?.set(keys[i]!, row);
    });
    options.onProgress?.(Math.min(start + batchSize, todo.length), todo.length);
  }
  cache?.flush();
  return out;
}
