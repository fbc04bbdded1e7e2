export {
  fitWithEarlyStopping, validationSummary, identityHash, dataIdentity, CheckpointMismatchError,
  type Batch, type FitTask, type FitOptions, type FitResult, type EpochLog,
} from './fit.js';
export { positiveClassWeights, weightedBinaryCrossentropy, classWeightsFor, compileForTraining } from './loss.js';
export { crossFitHeads, ensembleHeads, type CrossFitOptions, type CrossFitResult } from './cross-fit.js';
export { createEpochBar, type ProgressBar, type ProgressValues } from './progress.js';
export {
  CommonOptionsSchema, runMetadata, publish, TrainingInterrupted,
  type Recipe, type RecipeContext, type TrainedModel,
} from './recipe.js';
export { labelMatrix, pickRows, predictRows, featureRowBatches, epochRng } from './rows.js';
export {
  trainFrozenFeatureModel, createFrozenFeatureHead, frozenHeadSettings, FROZEN_HEAD_DEFAULTS,
  type FrozenFeatureModelArgs, type CrossFittedModel, type FrozenHeadOptions, type FrozenHeadSettings,
} from './frozen-features.js';
