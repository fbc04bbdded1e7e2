export { MODEL_KINDS } from './kinds.js';
export {
  inspectModelsDir, loadModel, loadModelsDir, kindOf, warmUpMember, warmUpFusion, ModelsDirError,
  type ModelsDirPlan, type LoadedModels, type MemberClassifier,
} from './models-dir.js';
export { predictFilms } from './predict-films.js';
