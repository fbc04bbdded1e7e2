export { MODEL_KINDS } from './kinds.js';
export {
  inspectModelsDir, openModelsDir, loadModel, kindOf, posterSizeOf, ModelsDirError, IN_PROCESS,
  type ModelsDirPlan, type OpenedModels, type OpenModelsOptions, type ModelHost, type HostedModel, type MemberClassifier,
} from './models-dir.js';
export { predictFilms, predictModels, type ModelsPredictions, type PredictFilmsOptions } from './predict-films.js';
