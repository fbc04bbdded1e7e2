import { join } from 'node:path';
import { GENRES, NUM_GENRES, type Film } from '@filmgenre/core';
import { loadPosterSet } from '@filmgenre/data-images';
import { loadPosterClassifier, type PosterClassifier } from '@filmgenre/model-cnn';
import { loadOverviewClassifier, type OverviewClassifier } from '@filmgenre/model-lstm';
import { applyLateFusion, fitLateFusion, saveFusionClassifier } from '@filmgenre/model-fusion';
import { evaluateMultiLabel } from '@filmgenre/metrics';
import { provenance } from '../provenance.js';
import { tuneThresholds } from '../training/thresholds.js';
import { labelMatrix, type TrainContext, type TrainedModel } from './context.js';

export interface ModalityOutputs {
  films: Film[];
  image: { probabilities: Float32Array; features: Float32Array; featureDim: number };
  text: { probabilities: Float32Array; features: Float32Array; featureDim: number };
}

/** Runs both saved single-modality models on the same films (those whose poster decodes). */
export async function modalityOutputs(
  poster: PosterClassifier, overview: OverviewClassifier, films: readonly Film[], cacheDir: string, signal?: AbortSignal,
): Promise<ModalityOutputs> {
  const set = await loadPosterSet(films, { size: poster.imageSize, cacheDir: join(cacheDir, 'posters'), signal });
  const byId = new Map(films.map((f) => [f.id, f]));
  const kept = set.ids.map((id) => byId.get(id)!);
  const per = poster.imageSize * poster.imageSize * 3;
  const posters = kept.map((_, i) => set.pixels.subarray(i * per, (i + 1) * per));
  const image = await poster.predictWithFeatures(posters);
  const text = await overview.predictWithFeatures(kept.map((f) => f.overview));
  return { films: kept, image, text };
}

export async function trainFusionModel(ctx: TrainContext): Promise<TrainedModel> {
  const started = Date.now();
  const { log } = ctx;
  const poster = await loadPosterClassifier(join(ctx.outDir, 'cnn'));
  const overview = await loadOverviewClassifier(join(ctx.outDir, 'lstm'));
  try {
    const outputs = await modalityOutputs(poster, overview, ctx.split.validation, ctx.cacheDir, ctx.signal);
    const labels = labelMatrix(outputs.films, NUM_GENRES);
    const params = fitLateFusion({ imageProbs: outputs.image.probabilities, textProbs: outputs.text.probabilities, labels, numGenres: NUM_GENRES });
    const probabilities = applyLateFusion(params, outputs.image.probabilities, outputs.text.probabilities);
    const thresholds = tuneThresholds(probabilities, labels, ctx.config.thresholds);
    const metrics = evaluateMultiLabel({ probabilities, labels, thresholds, genres: [...GENRES] });
    const dir = join(ctx.outDir, 'fusion');
    const seconds = (Date.now() - started) / 1000;
    await saveFusionClassifier(dir, {
      kind: 'late',
      late: { ...params, thresholds },
      metadata: {
        format: 1,
        name: 'fusion',
        modality: 'fusion',
        variant: 'late',
        genres: [...GENRES],
        thresholds,
        preprocessing: {
          components: {
            cnn: { variant: poster.metadata.variant, createdAt: poster.metadata.createdAt },
            lstm: { variant: overview.metadata.variant, createdAt: overview.metadata.createdAt },
          },
        },
        metrics: { validation: metrics },
        history: [],
        training: { fitOn: 'validation', validationFilms: outputs.films.length, imageWeights: [...params.weights], seconds },
        ...provenance(['@filmgenre/model-fusion', '@filmgenre/model-cnn', '@filmgenre/model-lstm'], ctx.backend),
      },
    });
    log(`[fusion] saved ${dir}: validation micro-F1 ${metrics.micro.f1.toFixed(3)}, macro-F1 ${metrics.macro.f1.toFixed(3)}`);
    return {
      name: 'fusion', variant: 'late', dir, validationIds: outputs.films.map((f) => f.id), validationProbabilities: probabilities,
      validationLabels: labels, thresholds, seconds, interrupted: false,
    };
  } finally {
    poster.dispose();
    overview.dispose();
  }
}
