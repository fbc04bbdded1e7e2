export { FastBiLSTM, BILSTM_KERNELS, BILSTM_KERNEL_ENV, resolveBiLSTMKernel, type FastBiLSTMArgs, type BiLSTMKernel } from './bilstm-layer.js';
export { PositionEmbedding, TransformerBlock, MaskedMeanPooling, type TransformerBlockArgs } from './transformer-layers.js';
export {
  OverviewModelOptionsSchema, parseOverviewModelOptions, OVERVIEW_VARIANTS, WINK_DIM,
  type OverviewModelOptions, type OverviewModelOptionsInput,
} from './options.js';
export { createOverviewModel, FEATURE_LAYER } from './model.js';
export { loadPretrainedEmbeddings, type PretrainedEmbeddings, type LoadPretrainedOptions } from './embeddings.js';
export {
  loadOverviewClassifier, saveOverviewClassifier, overviewClassifierKind, OVERVIEW_CLASSIFIER_KIND, VOCABULARY_FILE, PREDICT_BATCH, type OverviewClassifier,
} from './classifier.js';
export { trimTrailingPadding, sequenceLengths, gatherSequences, predictSequences, acceptsAnyLength } from './trim.js';
