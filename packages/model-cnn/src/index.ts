export {
  createPosterCnn, createFeatureHead, posterFeatureModel, posterFeatureDim, resolvePosterCnnOptions,
  PosterCnnOptionsSchema, FeatureHeadOptionsSchema, POSTER_VARIANTS, FEATURES_LAYER, OUTPUT_LAYER,
  type PosterCnnOptions, type ResolvedPosterCnnOptions, type FeatureHeadOptions, type PosterVariant,
} from './models.js';
export {
  PosterFeatureExtractor, FEATURE_EXTRACTOR_DIR, FEATURE_EXTRACTOR_SPEC_JSON,
  DEFAULT_FEATURE_SPEC, FEATURE_TRUNKS, FEATURE_POOLINGS, resolveFeatureSpec,
  type PosterFeatureExtractorInfo, type FeatureExtractorRuntimeOptions, type FeatureExtractorSpec, type FeatureExtractorSpecInput, type FeatureTrunk,
  type FeaturePooling, type FeatureInputRange,
} from './feature-extractor.js';
export { extractPosterFeatures, posterFeatureIdentity, type PosterFeatureOptions } from './poster-features.js';
export {
  loadPosterClassifier, savePosterClassifier, posterPreprocessing, posterClassifierKind, POSTER_CLASSIFIER_KIND, PREDICT_BATCH,
  type PosterClassifier, type PosterPreprocessing,
} from './classifier.js';
