// Train/serve parity: the tensor the serving app builds from an uploaded poster's bytes is exactly
// the tensor training builds from the same film through the decode cache.
import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePoster } from './decode.js';
import { loadPosterSet, type PosterSource } from './load.js';
import { pixelsToBatchTensor } from './tensor.js';
import { findDatasetDir } from '@filmgenre/core';
import { tempDir } from './test-helpers.js';

const datasetDir = findDatasetDir();
const IDS = ['tt0084058', 'tt0084867', 'tt0085121'];

describe.skipIf(!datasetDir)('poster → model input, training vs serving', () => {
  const tmp = tempDir('parity');
  afterAll(tmp.cleanup);
  let films: PosterSource[];
  beforeAll(async () => {
    await tf.setBackend('cpu');
    films = IDS.map((id) => ({ id, posterPath: join(datasetDir!, 'Images', `${id}.jpg`) }));
  });

  it.each([64, 160])('is identical at %i px, cold and from the cache, plain and mirrored', async (size) => {
    const cacheDir = join(tmp.dir, `cache-${size}`);
    const cold = await loadPosterSet(films, { size, cacheDir });
    const warm = await loadPosterSet(films, { size, cacheDir });
    expect(warm.stats.cacheHits).toBe(IDS.length);
    for (const flip of [false, true]) {
      // Serving: the uploaded bytes, decoded on their own, one request at a time.
      const served = await Promise.all(films.map(async (f) => decodePoster(await readFile(f.posterPath), { size })));
      const servingInput = pixelsToBatchTensor(Uint8Array.from(served.flatMap((p) => [...p])), size, { flip });
      for (const set of [cold, warm]) {
        const trainingInput = pixelsToBatchTensor(set.pixels, size, { flip });
        expect(trainingInput.shape).toEqual(servingInput.shape);
        expect(Buffer.from(trainingInput.dataSync().buffer).equals(Buffer.from(servingInput.dataSync().buffer))).toBe(true);
        trainingInput.dispose();
      }
      servingInput.dispose();
    }
  });
});
