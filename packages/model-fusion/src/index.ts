export {
  fitLateFusion, applyLateFusion, LateFusionParamsSchema, DEFAULT_WEIGHT_GRID, LATE_FUSION_WEIGHTINGS,
  type LateFusionParams, type LateFusionFit, type LateFusionWeighting, type FitLateFusionArgs,
} from './late.js';
export { selectLateFusion, type LateFusionSelection, type SelectLateFusionArgs } from './select.js';
export { fitStackedFusion, applyStackedFusion, StackedFusionParamsSchema, type StackedFusionParams, type FitStackedFusionArgs } from './stack.js';
export {
  loadFusionClassifier, saveFusionClassifier, fusionClassifierKind, FUSION_CLASSIFIER_KIND, FUSION_KINDS, LATE_FUSION_FILE, STACKED_FUSION_FILE, FUSION_PREDICT_BATCH,
  type FusionKind, type SaveFusionArgs,
} from './classifier.js';
