import { join } from 'node:path';
import type { Film } from '@filmgenre/core';
import { loadPosterSet } from '@filmgenre/data-images';
import type { ImageClassifier, ModalityOutput, TextClassifier } from '@filmgenre/model-artifact';
import type { MemberClassifier } from './models-dir.js';

/**
 * Runs a single-modality model over dataset films, through the same preprocessing as serving:
 * posters decoded (via the decode cache) at the model's input size, overviews as they are. Films
 * whose poster cannot be decoded are left out of an image model's output and listed in `skipped`.
 */
export async function predictFilms(
  model: MemberClassifier, films: readonly Film[], options: { cacheDir: string; signal?: AbortSignal },
): Promise<{ ids: string[]; output: ModalityOutput; skipped: { id: string; reason: string }[] }> {
  if (model.metadata.modality === 'text') {
    const output = await (model as TextClassifier).predictWithFeatures(films.map((f) => f.overview));
    return { ids: films.map((f) => f.id), output, skipped: [] };
  }
  const image = model as ImageClassifier;
  const set = await loadPosterSet(films, { size: image.imageSize, cacheDir: join(options.cacheDir, 'posters'), ...(options.signal ? { signal: options.signal } : {}) });
  const per = image.imageSize * image.imageSize * 3;
  const posters = set.ids.map((_, i) => set.pixels.subarray(i * per, (i + 1) * per));
  const output = await image.predictWithFeatures(posters);
  return { ids: set.ids, output, skipped: set.bad.map((b) => ({ id: b.id, reason: b.reason })) };
}
