import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic } from '@filmgenre/core';
import { pixelsToBatchTensor } from '@filmgenre/data-images';
import type { PosterFeatureExtractor } from '@filmgenre/model-cnn';
import { createEpochBar, TrainingInterrupted, yieldToEventLoop } from '@filmgenre/training';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Pretrained features of every poster, computed once and cached on disk keyed by the extractor, its
 * input size, the view (plain or mirrored) and the exact decoded pixels, so later runs skip the
 * network and a changed poster or extractor is never served stale.
 */
export async function posterFeatures(
  extractor: PosterFeatureExtractor, pixels: Uint8Array, cacheDir: string, options: { flip?: boolean; batchSize?: number; signal?: AbortSignal; label?: string } = {},
): Promise<Float32Array> {
  const size = extractor.inputSize;
  const n = pixels.length / (size * size * 3);
  const key = createHash('sha256').update(extractor.info.source).update(String(size)).update(options.flip ? 'flip' : 'plain').update(pixels).digest('hex').slice(0, 24);
  const path = join(cacheDir, 'features', `${key}.f32`);
  if (existsSync(path)) {
    const bytes = readFileSync(path);
    if (bytes.byteLength === n * extractor.featureDim * 4) return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }
  const batchSize = options.batchSize ?? 32;
  const out = new Float32Array(n * extractor.featureDim);
  const bar = createEpochBar(options.label ?? '[features]', Math.ceil(n / batchSize), { metrics: false });
  for (let start = 0, step = 0; start < n; start += batchSize, step++) {
    await yieldToEventLoop();
    if (options.signal?.aborted) throw new TrainingInterrupted('stopped while computing poster features');
    const count = Math.min(batchSize, n - start);
    const indices = Array.from({ length: count }, (_, i) => start + i);
    const features = tf.tidy(() => extractor.extract(pixelsToBatchTensor(pixels, size, { indices, flip: options.flip ?? false })));
    out.set((await features.data()) as Float32Array, start * extractor.featureDim);
    features.dispose();
    bar.update(step + 1, {});
  }
  bar.stop();
  writeFileAtomic(path, new Uint8Array(out.buffer));
  return out;
}
