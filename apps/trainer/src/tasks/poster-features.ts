import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PosterFeatureExtractor } from '@filmgenre/model-cnn';
import { writeFileAtomic } from '@filmgenre/tf-runtime';
import { createEpochBar } from '../training/progress.js';

/**
 * Pretrained features of every poster, computed once and cached on disk keyed by the extractor, its
 * input size and the exact posters' bytes (via the decoded pixels), so later runs skip the network.
 */
export async function posterFeatures(
  extractor: PosterFeatureExtractor, pixels: Uint8Array, cacheDir: string, options: { flip?: boolean; batchSize?: number; signal?: AbortSignal; label?: string } = {},
): Promise<Float32Array> {
  const size = extractor.inputSize;
  const per = size * size * 3;
  const n = pixels.length / per;
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
    if (options.signal?.aborted) throw new Error('interrupted while computing poster features');
    const count = Math.min(batchSize, n - start);
    const features = tf.tidy(() => {
      let xs = tf.tensor4d(pixels.subarray(start * per, (start + count) * per), [count, size, size, 3], 'int32').toFloat().div(255) as tf.Tensor4D;
      if (options.flip) xs = tf.reverse(xs, 2);
      return extractor.extract(xs);
    });
    out.set(await features.data(), start * extractor.featureDim);
    features.dispose();
    bar.update(step + 1, {});
  }
  bar.stop();
  writeFileAtomic(path, new Uint8Array(out.buffer));
  return out;
}
