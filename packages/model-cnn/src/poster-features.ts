import * as tf from '@tensorflow/tfjs';
import { VectorCache } from '@filmgenre/core';
import { decodePoster, DECODER_VERSION, pixelsToBatchTensor } from '@filmgenre/data-images';
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
  /** A poster that cannot be decoded is reported here and its row left at zeros; without it, it throws. */
  onBad?: (index: number, reason: string) => void;
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
  const decodeBatch = (start: number) => Promise.all(todo.slice(start, start + batchSize).map(async (i) => {
    const name = typeof posters[i] === 'string' ? (posters[i] as string) : `poster ${i}`;
    try {
      return await decodePoster(Buffer.from(bytes[i]!.buffer, bytes[i]!.byteOffset, bytes[i]!.byteLength), { width, height, name });
    } catch (error) {
      if (!options.onBad) throw error;
      options.onBad(i, (error as Error).message);
      return undefined;
    }
  }));
  const per = width * height * 3;
  let next = todo.length > 0 ? decodeBatch(0) : undefined;
  for (let start = 0; start < todo.length; start += batchSize) {
    if (options.signal?.aborted) throw new Error('interrupted while computing poster features');
    const decoded = await next!;
    next = start + batchSize < todo.length ? decodeBatch(start + batchSize) : undefined;
    const rows = decoded.flatMap((p, j) => (p ? [{ pixels: p, index: todo[start + j]! }] : []));
    if (rows.length === 0) continue;
    const flat = new Uint8Array(rows.length * per);
    rows.forEach((r, j) => flat.set(r.pixels, j * per));
    // The same conversion and flip as training and serving (data-images' one path).
    const features = tf.tidy(() => extractor.extract(pixelsToBatchTensor(flat, { width, height }, { flip })));
    const values = (await features.data()) as Float32Array;
    features.dispose();
    rows.forEach(({ index }, j) => {
      const row = values.subarray(j * dim, (j + 1) * dim);
      out.set(row, index * dim);
      cache?.set(keys[index]!, row);
    });
    options.onProgress?.(Math.min(start + batchSize, todo.length), todo.length);
  }
  cache?.flush();
  return out;
}
