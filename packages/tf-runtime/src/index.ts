export { initBackend, activeBackend, BACKENDS, BACKEND_ENV, BackendOptionSchema, type BackendName, type BackendRequest, type BackendInfo, type InitBackendOptions } from './backend.js';
export { fileSystemIO, modelJsonOf, modelArtifactsOf, MODEL_JSON, WEIGHTS_BIN } from './io-handler.js';
