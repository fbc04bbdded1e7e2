export {
  createPosterCnn, createFeatureHead, posterFeatureModel, posterFeatureDim, resolvePosterCnnOptions,
  PosterCnnOptionsSchema, FeatureHeadOptionsSchema, POSTER_VARIANTS, FEATURES_LAYER, OUTPUT_LAYER,
  type PosterCnnOptions, type ResolvedPosterCnnOptions, type FeatureHeadOptions, type PosterVariant,
} from './models.js';
export {
  PosterFeatureExtractor, FEATURE_EXTRACTOR_DIR, DEFAULT_FEATURE_INPUT_SIZE, PRETRAINED_FEATURE_DIM,
  type PosterFeatureExtractorInfo,
} from './feature-extractor.js';
export {
  loadPosterClassifier, savePosterClassifier, posterPreprocessing, posterClassifierKind, POSTER_CLASSIFIER_KIND, PREDICT_BATCH,
  type PosterClassifier, type PosterPreprocessing,
} from './classifier.js';
