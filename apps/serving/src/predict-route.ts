// POST /v1/predict once the form is valid: poster decode, the models (micro-batched), the answer.
import { decide, type ModelMetadata } from '@filmgenre/model-artifact';
import type { RequestHandler } from 'express';
import { ApiError } from './errors.js';
import { metadataOf, sizeKey, type ServingModels } from './models.js';
import type { PosterDecoder } from './poster-decoder.js';
import { predictInputOf } from './predict-request.js';
import type { ModelRun, Predictor } from './predictor.js';

/**
 * Predict requests that will reach the model batchers within milliseconds, which may wait a little for
 * them (see MicroBatcher's `incoming`): from the end of their upload until they are submitted, unless
 * their poster is decoded outside the server process. A request still uploading, or a poster in a
 * decoder process (slow by definition, up to the decode deadline), would make every batch wait its
 * longest for nothing: a scan bomb in the one-at-a-time lane added 50 ms to every other request.
 */
export class PreparingCounter {
  private n = 0;

  get count(): number {
    return this.n;
  }

  /** Counts the request until the handler calls `releasePreparing(res)` or the response closes. */
  readonly middleware: RequestHandler = (_req, res, next) => {
    this.n++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.n--;
    };
    res.locals['releasePreparing'] = release;
    res.on('close', release);
    next();
  };
}

export function createPredictHandler(deps: { decoder: PosterDecoder; loaded: () => { models: ServingModels; predictor: Predictor }; queueDeadlineMs: number }): RequestHandler {
  return async (_req, res, next) => {
    const started = performance.now();
    const releasePreparing = () => (res.locals['releasePreparing'] as (() => void) | undefined)?.();
    try {
      const { poster: file, overview } = predictInputOf(res);
      const { models, predictor } = deps.loaded();
      // A request whose only input no loaded model takes has nothing to answer.
      if (!(file && predictor.takesPosters) && !(overview !== undefined && predictor.takesOverviews)) {
        throw new ApiError('NO_INPUT', predictor.takesPosters ? 'this server has no overview model: send a poster' : 'this server has no poster model: send an overview');
      }
      // Load shedding, before any decode or model work: a request that would wait past the deadline
      // behind the work already admitted is answered now, with when to retry, instead of queueing.
      const backlogMs = predictor.backlogMs({ poster: file !== undefined && predictor.takesPosters, ...(overview !== undefined && predictor.takesOverviews ? { overview } : {}) });
      if (backlogMs > deps.queueDeadlineMs) {
        throw new ApiError('OVERLOADED', `the models would start on this request in about ${Math.round(backlogMs)} ms, over the ${deps.queueDeadlineMs} ms this server queues; retry later`, { 'Retry-After': String(Math.max(1, Math.ceil(backlogMs / 1000))) });
      }
      let posters: Record<string, Uint8Array> | undefined;
      let posterInfo: { format: string; width: number; height: number; bytes: number } | undefined;
      const decodeStarted = performance.now();
      if (file) {
        // Decoded once per distinct input size of the poster models; header checks alone when none takes posters.
        const sizes = predictor.posterSizes;
        const header = sizes.length ? undefined : await deps.decoder.readHeader(file);
        const decoded = sizes.length ? await deps.decoder.decode(file, sizes, (lane) => lane !== 'in-process' && releasePreparing()) : undefined;
        if (decoded) posters = Object.fromEntries(sizes.map((size, i) => [sizeKey(size), decoded.pixels[i]!]));
        const probe = decoded?.header ?? header!;
        posterInfo = { format: probe.format, width: probe.width, height: probe.height, bytes: file.length };
      }
      const decodeMs = performance.now() - decodeStarted;

      const inferenceStarted = performance.now();
      releasePreparing();
      const runs = await predictor.predict({ ...(posters ? { posters } : {}), ...(overview !== undefined ? { overview } : {}) });
      const inferenceMs = performance.now() - inferenceStarted;

      const out: Record<string, unknown> = {};
      for (const [key, run] of Object.entries(runs)) out[key] = describeRun(metadataOf(models, key), run);
      res.json({
        models: out,
        input: { ...(posterInfo ? { poster: posterInfo } : {}), ...(overview !== undefined ? { overview: { chars: [...overview].length } } : {}) },
        timings: { decodeMs: round(decodeMs, 3), inferenceMs: round(inferenceMs, 3), totalMs: round(performance.now() - started, 3) },
      });
    } catch (error) {
      next(error);
    }
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** One model's answer: every genre by decreasing probability, against the model's stored thresholds. */
function describeRun(metadata: ModelMetadata, run: ModelRun) {
  // The contract's decision rule (probability ≥ the model's stored threshold), as every consumer applies it.
  const genres = decide(run.probabilities, metadata)
    .map((d) => ({ ...d, probability: round(d.probability, 6) }))
    .sort((a, b) => b.probability - a.probability);
  return {
    name: metadata.name,
    modality: metadata.modality,
    variant: metadata.variant,
    ...(metadata.members ? { members: Object.keys(metadata.members) } : {}),
    versions: metadata.versions,
    createdAt: metadata.createdAt,
    gitCommit: metadata.gitCommit,
    genres,
    predicted: genres.filter((g) => g.predicted).map((g) => g.genre),
    timings: { waitMs: round(run.waitMs, 3), inferenceMs: round(run.runMs, 3), batchSize: run.batchSize },
  };
}
