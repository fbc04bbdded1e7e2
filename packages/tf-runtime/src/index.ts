export { initBackend, BACKENDS, BACKEND_ENV, type BackendName, type BackendRequest, type BackendInfo, type InitBackendOptions } from './backend.js';
export { fileSystemIO, MODEL_JSON, WEIGHTS_BIN } from './io-handler.js';
export { writeFileAtomic, replaceDirAtomic } from './atomic.js';
export {
  saveModelDir, loadModelDir, readModelMetadata, gitCommit, ModelMetadataSchema, ModelDirError, METADATA_JSON,
  MODEL_DIR_FORMAT, type ModelMetadata, type LoadedModelDir, type SaveModelDirOptions,
} from './model-dir.js';
