import { join } from 'node:path';
import type { Film } from '@filmgenre/core';
import { decodePoster, loadPosterSet } from '@filmgenre/data-images';
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
  const { inputWidth: width, inputHeight: height } = image;
  if (width === height) {
    // Square inputs (the CNNs): through the decode cache, as training loads them.
    const set = await loadPosterSet(films, { size: width, cacheDir: join(options.cacheDir, 'posters'), ...(options.signal ? { signal: options.signal } : {}) });
    const per = width * height * 3;
    const posters = set.ids.map((_, i) => set.pixels.subarray(i * per, (i + 1) * per));
    return { ids: set.ids, output: await image.predictWithFeatures(posters), skipped: set.bad.map((b) => ({ id: b.id, reason: b.reason })) };
  }
  // Otherwise decoded as serving decodes an upload, four at a time.
  const decoded = new Array<Uint8Array | undefined>(films.length);
  const skipped: { id: string; reason: string }[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < films.length) {
      const i = next++;
      options.signal?.throwIfAborted();
      try {
        decoded[i] = await decodePoster(films[i]!.posterPath, { width, height });
      } catch (error) {
        skipped.push({ id: films[i]!.id, reason: (error as Error).message });
      }
    }
  }));
  const kept = films.flatMap((f, i) => (decoded[i] ? [{ id: f.id, pixels: decoded[i]! }] : []));
  const output = await image.predictWithFeatures(kept.map((k) => k.pixels));
  return { ids: kept.map((k) => k.id), output, skipped };
}
