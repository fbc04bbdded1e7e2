import { join } from 'node:path';
import { NUM_GENRES, pickRows, yieldToEventLoop, type Film } from '@filmgenre/core';
import { decodePoster, loadPosterSet } from '@filmgenre/data-images';
import { assertFinite, type ImageClassifier, type ModalityOutput, type TextClassifier } from '@filmgenre/model-artifact';
import type { MemberClassifier, OpenedModels } from './models-dir.js';

/** How long one model call should take: a stop request waits for the call in progress. */
const CALL_MS = 400;

export interface PredictFilmsOptions {
  cacheDir: string;
  signal?: AbortSignal;
  /**
   * Inputs per model call. A model's float results can differ in the last bits with the batch it ran
   * in, so output that must not depend on timing (batch prediction, whose shards must join into the
   * bytes of one run) fixes it; without it, calls are sized to take about CALL_MS each.
   */
  batchSize?: number;
}

/**
 * Runs a model over its inputs in chunks of `batchSize`, or sized to take about CALL_MS each
 * (whatever the runtime and the machine's load), yielding to the event loop and checking `signal`
 * between them.
 */
async function predictInChunks<T>(predict: (inputs: T[]) => Promise<ModalityOutput>, inputs: readonly T[], options: PredictFilmsOptions): Promise<ModalityOutput> {
  const { signal, batchSize } = options;
  const parts: ModalityOutput[] = [];
  let size = batchSize ?? 1; // the first call also pays the kernels' set-up
  for (let start = 0; start < inputs.length || parts.length === 0;) {
    await yieldToEventLoop();
    signal?.throwIfAborted();
    const chunk = inputs.slice(start, start + size);
    const began = performance.now();
    parts.push(await predict(chunk));
    const msPerInput = (performance.now() - began) / Math.max(1, chunk.length);
    start += chunk.length;
    if (!batchSize) size = Math.max(1, Math.min(64, Math.floor(CALL_MS / Math.max(msPerInput, 0.1))));
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
  model: MemberClassifier, films: readonly Film[], options: PredictFilmsOptions,
): Promise<{ ids: string[]; output: ModalityOutput; skipped: { id: string; reason: string }[] }> {
  if (model.metadata.modality === 'text') {
    const text = model as TextClassifier;
    const output = await predictInChunks((inputs: string[]) => text.predictWithFeatures(inputs), films.map((f) => f.overview), options);
    return { ids: films.map((f) => f.id), output, skipped: [] };
  }
  const image = model as ImageClassifier;
  const { inputWidth: width, inputHeight: height } = image;
  if (width === height) {
    // Square inputs (the CNNs): through the decode cache, as training loads them.
    const set = await loadPosterSet(films, { size: width, cacheDir: join(options.cacheDir, 'posters'), ...(options.signal ? { signal: options.signal } : {}) });
    const per = width * height * 3;
    const posters = set.ids.map((_, i) => set.pixels.subarray(i * per, (i + 1) * per));
    const output = await predictInChunks((inputs: Uint8Array[]) => image.predictWithFeatures(inputs), posters, options);
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
  const output = await predictInChunks((inputs: Uint8Array[]) => image.predictWithFeatures(inputs), kept.map((k) => k.pixels), options);
  return { ids: kept.map((k) => k.id), output, skipped };
}

export interface ModelsPredictions {
  /** The films every member could score, in the order given. */
  ids: string[];
  /** The members' outputs for those films (what the fusion combines). */
  outputs: Record<string, ModalityOutput>;
  /** n×genres probabilities of every model for those films: the members in order, then the fusion. */
  probabilities: Record<string, Float32Array>;
  /** Films left out, with the member that could not take them and why (an undecodable poster). */
  skipped: { id: string; model: string; reason: string }[];
}

/**
 * Every model of an opened models directory over dataset films (evaluation and batch prediction
 * alike): each member on the films it can take, restricted to the films all members scored, then
 * the fusion over the members' outputs. Every probability goes through model-artifact's check.
 */
export async function predictModels(
  models: Pick<OpenedModels, 'members' | 'fusion'>, films: readonly Film[], options: PredictFilmsOptions,
): Promise<ModelsPredictions> {
  const raw: Record<string, { ids: string[]; output: ModalityOutput }> = {};
  const skipped: ModelsPredictions['skipped'] = [];
  for (const [key, model] of Object.entries(models.members)) {
    const result = await predictFilms(model, films, options);
    skipped.push(...result.skipped.map((s) => ({ ...s, model: key })));
    raw[key] = result;
  }
  const rowsOf = Object.fromEntries(Object.entries(raw).map(([key, r]) => [key, new Map(r.ids.map((id, i) => [id, i]))]));
  const ids = films.filter((f) => Object.values(rowsOf).every((rows) => rows.has(f.id))).map((f) => f.id);
  const outputs: Record<string, ModalityOutput> = {};
  const probabilities: Record<string, Float32Array> = {};
  for (const [key, { output }] of Object.entries(raw)) {
    const rows = ids.map((id) => rowsOf[key]!.get(id)!);
    const k = models.members[key]!.metadata.genres.length;
    outputs[key] = { probabilities: pickRows(output.probabilities, k, rows), features: pickRows(output.features, output.featureDim, rows), featureDim: output.featureDim };
    probabilities[key] = outputs[key].probabilities;
  }
  if (models.fusion && ids.length > 0) probabilities[models.fusion.metadata.name] = await models.fusion.predict(outputs);
  for (const [key, p] of Object.entries(probabilities)) assertFinite(p, NUM_GENRES, `${key} model`, { probabilities: true });
  return { ids, outputs, probabilities, skipped };
}
