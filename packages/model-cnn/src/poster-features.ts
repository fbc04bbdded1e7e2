import { VectorCache } from '@filmgenre/core';
import { decodePoster, DECODER_VERSION, mapLimit } from '@filmgenre/data-images';
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

/** Poster files read at once: bounded, so thousands of posters never hold thousands of open files. */
const READ_CONCURRENCY = 16;

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
  const readBytes = async (p: string | Uint8Array) => (typeof p === 'string' ? new Uint8Array(await readFile(p)) : p);
  // Cache lookups first; only the misses' bytes are read again, batch by batch, so memory holds one
  // batch of posters, not the whole set.
  let todo = posters.map((_, i) => i);
  if (cache) {
    const hits = await mapLimit(posters, READ_CONCURRENCY, async (p) => {
      try {
        return cache.get(cache.key(await readBytes(p)));
      } catch {
        return undefined; // unreadable: the decode pass below reports it
      }
    }, options.signal);
    hits.forEach((hit, i) => hit && out.set(hit, i * dim));
    todo = todo.filter((i) => !hits[i]);
  }
  const decodeBatch = (start: number) => mapLimit(todo.slice(start, start + batchSize), READ_CONCURRENCY, async (i) => {
    const name = typeof posters[i] === 'string' ? (posters[i] as string) : `poster ${i}`;
    try {
      // The key comes from the bytes decoded, so a file edited meanwhile is never cached under its old bytes.
      const bytes = await readBytes(posters[i]!);
      const pixels = await decodePoster(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { width, height, name });
      return { pixels, key: cache?.key(bytes) };
    } catch (error) {
      if (!options.onBad) throw error;
      options.onBad(i, (error as Error).message);
      return undefined;
    }
  });
  const per = width * height * 3;
  let next = todo.length > 0 ? decodeBatch(0) : undefined;
  for (let start = 0; start < todo.length; start += batchSize) {
    const decoded = await next!;
    // Checked after the await, the one point where a signal handler can have run.
    if (options.signal?.aborted) {
      cache?.flush(); // a resumed run reads the features computed so far from the cache
      throw new Error('interrupted while computing poster features');
    }
    next = start + batchSize < todo.length ? decodeBatch(start + batchSize) : undefined;
    const rows = decoded.flatMap((d, j) => (d ? [{ pixels: d.pixels, key: d.key, index: todo[start + j]! }] : []));
    if (rows.length === 0) continue;
    const flat = new Uint8Array(rows.length * per);
    rows.forEach((r, j) => flat.set(r.pixels, j * per));
    // The same extractor call as serving's (the classifier's).
    const values = await extractor.extract(flat, { flip });
    rows.forEach(({ index, key }, j) => {
      const row = values.subarray(j * dim, (j + 1) * dim);
      out.set(row, index * dim);
      if (key) cache?.set(key, row);
    });
    options.onProgress?.(Math.min(start + batchSize, todo.length), todo.length);
  }
  cache?.flush();
  return out;
}
