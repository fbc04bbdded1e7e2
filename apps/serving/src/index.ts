export { createApp, API_VERSION, type CreateAppOptions, type ServingApp } from './app.js';
export { parseConfig, defaultConfig, ServingConfigSchema, type ServingConfig } from './config.js';
export { ApiError, ERRORS, ERROR_CODES, type ErrorCode } from './errors.js';
export { createMetrics, type ServingMetrics } from './metrics.js';
export { MicroBatcher, BatcherClosedError, type MicroBatcherOptions, type BatchedResult, type BatchInfo } from './micro-batcher.js';
export { loadModels, inspectModelsDir, disposeModels, modelKeys, metadataOf, ModelsDirError, type ServingModels, type MemberModel, type ImageModel, type TextModel, type FusionModel } from './models.js';
export { listen, type RunningServer } from './server.js';
