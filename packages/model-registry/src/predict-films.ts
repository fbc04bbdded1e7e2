import { join } from 'node:path';
import { yieldToEventLoop, type Film } from '@filmgenre/core';
import { decodePoster, loadPosterSet } from '@filmgenre/data-images';
import type { ImageClassifier, ModalityOutput, TextClassifier } from '@filmgenre/model-artifact';
import type { MemberClassifier } from './models-dir.js';

/** How long one model call should take: a stop request waits for the call in progress. */
const CALL_MS = 400;

/**
 * Runs a model over its inputs in chunks sized to take about CALL_MS each (whatever the runtime and
 * the machine's load), yielding to the event loop and checking `signal` between them.
 */
async function predictInChunks<T>(predict: (inputs: T[]) => Promise<ModalityOutput>, inputs: readonly T[], signal: AbortSignal | undefined): Promise<ModalityOutput> {
  const parts: ModalityOutput[] = [];
  let size = 1; // the first call also pays the kernels' set-up
  for (let start = 0; start < inputs.length || parts.length === 0;) {
    await yieldToEventLoop();
    signal?.throwIfAborted();
    const chunk = inputs.slice(start, start + size);
    const began = performance.now();
    parts.push(await predict(chunk));
    const msPerInput = (performance.now() - began) / Math.max(1, chunk.length);
    start += chunk.length;
    size = Math.max(1, Math.min(64, Math.floor(CALL_MS / Math.max(msPerInput, 0.1))));
  }
  const concat = (pick: (o: ModalityOutput) => Float32Array) => {
    const out = new Float32Array(parts.reduce((s, o) => s + pick(o).length, 0));
    parts.reduce((at, o) => (out.set(pick(o), at), at + pick(o).length), 0);
    return out;
  };
  return { probabilities: concat((o) => o.probabilities), features: concat((o) => o.features), featureDim: parts[0]!.featureDim };
}

/**
 * Runs a single-modality model over dataset films, through the same preprocessing as serving:
 * posters decoded (via the decode cache) at the model's input size, overviews as they are. Films
 * whose poster cannot be decoded are left out of an image model's output and listed in `skipped`.
 * `signal` stops it between chunks of films (it throws the signal's reason).
 */
export async function predictFilms(
  model: MemberClassifier, films: readonly Film[], options: { cacheDir: string; signal?: AbortSignal },
): Promise<{ ids: string[]; output: ModalityOutput; skipped: { id: string; reason: string }[] }> {
  if (model.metadata.modality === 'text') {
    const text = model as TextClassifier;
    const output = await predictInChunks((inputs: string[]) => text.predictWithFeatures(inputs), films.map((f) => f.overview), options.signal);
    return { ids: films.map((f) => f.id), output, skipped: [] };
  }
  const image = model as ImageClassifier;
  const { inputWidth: width, inputHeight: height } = image;
  if (width === height) {
    // Square inputs (the CNNs): through the decode cache, as training loads them.
    const set = await loadPosterSet(films, { size: width, cacheDir: join(options.cacheDir, 'posters'), ...(options.signal ? { signal: options.signal } : {}) });
    const per = width * height * 3;
    const posters = set.ids.map((_, i) => set.pixels.subarray(i * per, (i + 1) * per));
    const output = await predictInChunks((inputs: Uint8Array[]) => image.predictWithFeatures(inputs), posters, options.signal);
    return { ids: set.ids, output, skipped: set.bad.map((b) => ({ id: b.id, reason: b.reason })) };
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
  const output = await predictInChunks((inputs: Uint8Array[]) => image.predictWithFeatures(inputs), kept.map((k) => k.pixels), options.signal);
  return { ids: kept.map((k) => k.id), output, skipped };
}
