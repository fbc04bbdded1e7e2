import { GENRES } from '@filmgenre/core';
import { MODALITIES } from '@filmgenre/model-artifact';
import { BACKENDS } from '@filmgenre/tf-runtime';
import { z } from 'zod';
import { INFERENCE_MODES } from './config.js';
import { inputsNeeded, metadataOf, modelKeys, type ServingModels } from './models.js';
import { ERRORS, errorCodesFor, type ErrorCode, type ErrorRoute } from './errors.js';
import { predictFormSchema, type RequestLimits } from './predict-request.js';

const errorSchema = (codes: readonly ErrorCode[]) => ({
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', enum: [...codes] }, message: { type: 'string' } },
    },
  },
});

/** The error answers of an operation, one per status, each listing its codes and when they are sent (from the registry). */
function errorResponses(...routes: ErrorRoute[]): Record<string, object> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of errorCodesFor(...routes)) byStatus.set(ERRORS[code].status, [...(byStatus.get(ERRORS[code].status) ?? []), code]);
  return Object.fromEntries([...byStatus].sort(([a], [b]) => a - b).map(([status, codes]) => [String(status), {
    description: codes.map((c) => `${c}: ${ERRORS[c].description}`).join('; '),
    content: { 'application/json': { schema: errorSchema(codes) } },
  }]));
}

/** One sentence per loaded model: its key, modality, variant and what makes it answer. */
function describeModels(models: ServingModels): { key: string; text: string }[] {
  return modelKeys(models).map((key) => {
    const m = metadataOf(models, key);
    const member = models.members[key];
    const input = member?.modality === 'image' ? ` (poster decoded to ${member.model.inputWidth}×${member.model.inputHeight})` : '';
    const over = m.members ? ` over ${Object.keys(m.members).join(' + ')}` : '';
    return { key, text: `\`${key}\`: ${m.modality} model, variant ${m.variant}${over}${input}; answers when the request has ${inputsNeeded(models, key).join(' and ')}` };
  });
}

/**
 * The OpenAPI 3.1 description of the HTTP API, with the limits this instance enforces and, once they
 * are loaded, the models it serves: the keys of an answer's `models` and of /v1/models.
 */
export function openApiDocument(config: RequestLimits, version: string, models?: ServingModels): object {
  const loaded = models ? describeModels(models) : undefined;
  /** An object keyed by model key: the loaded ones named, any key allowed (another instance may serve others). */
  const keyedByModel = (ref: string, what: string) => ({
    type: 'object',
    description: `${what}, keyed by model key (the model's directory name in the models directory).`
      + (loaded ? ` This instance serves: ${loaded.map((m) => m.text).join('; ')}.` : ''),
    ...(loaded ? { properties: Object.fromEntries(loaded.map((m) => [m.key, { $ref: ref, description: m.text }])) } : {}),
    additionalProperties: { $ref: ref },
  });
  // The form's JSON Schema comes from the zod schema the handler validates with (input side: what a client sends).
  const { $schema: _, ...requestSchema } = z.toJSONSchema(predictFormSchema(config), { io: 'input', unrepresentable: 'any' });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Film genre classifier',
      version,
      description: 'Predicts the genres of a film from its poster, its plot overview or both: every poster model of the models directory answers a poster, every overview model an overview, and the fusion model (when one is loaded) answers once all of its members did. '
        + (loaded ? `Models served: ${loaded.map((m) => m.text).join('; ')}. ` : '')
        + 'Every error answer is `{ "error": { "code", "message" } }` with a stable code (components.schemas.Error lists them all). '
        + `Any path: ${errorCodesFor('unmatched').map((c) => `${c} (${ERRORS[c].status}): ${ERRORS[c].description}`).join('; ')}. `
        + (errorCodesFor('connection').length ? `Answered by the HTTP server itself, connection then closed: ${errorCodesFor('connection').map((c) => `${c} (${ERRORS[c].status}): ${ERRORS[c].description}`).join('; ')}.` : ''),
    },
    paths: {
      '/v1/predict': {
        post: {
          operationId: 'predict',
          summary: 'Genre probabilities for a poster and/or an overview',
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: requestSchema,
                encoding: { poster: { contentType: 'image/*' } },
              },
            },
          },
          responses: {
            200: { description: 'Predictions of every model that applies to the input', content: { 'application/json': { schema: { $ref: '#/components/schemas/Prediction' } } } },
            ...errorResponses('predict', 'ready', 'any'),
          },
        },
      },
      '/v1/models': {
        get: {
          operationId: 'models',
          summary: 'The loaded models: names, variants, versions, metrics, genres and thresholds',
          responses: {
            200: { description: 'Loaded models', content: { 'application/json': { schema: { $ref: '#/components/schemas/Models' } } } },
            ...errorResponses('ready', 'any'),
          },
        },
      },
      '/healthz': { get: { operationId: 'healthz', summary: 'Liveness: the process answers', responses: { 200: { description: 'Alive', content: { 'application/json': { schema: { type: 'object', properties: { status: { const: 'ok' } } } } } } } } },
      '/readyz': {
        get: {
          operationId: 'readyz',
          summary: 'Readiness: models loaded and not shutting down',
          responses: {
            200: { description: 'Ready', content: { 'application/json': { schema: { type: 'object', properties: { status: { const: 'ready' } } } } } },
            ...errorResponses('ready'),
          },
        },
      },
      '/metrics': { get: { operationId: 'metrics', summary: 'Prometheus metrics', responses: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
      '/openapi.json': { get: { operationId: 'openapi', summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1 document', content: { 'application/json': { schema: { type: 'object' } } } } } } },
      '/': { get: { operationId: 'page', summary: 'A web page to try the models', responses: { 200: { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } } } } },
    },
    components: {
      schemas: {
        // Every code of the registry, including those of unmatched routes and of the HTTP server itself.
        Error: errorSchema(Object.keys(ERRORS) as ErrorCode[]),
        GenreScore: {
          type: 'object',
          required: ['genre', 'probability', 'threshold', 'predicted'],
          properties: {
            genre: { type: 'string', enum: [...GENRES] },
            probability: { type: 'number', minimum: 0, maximum: 1 },
            threshold: { type: 'number', minimum: 0, maximum: 1, description: "The model's stored decision threshold for this genre" },
            predicted: { type: 'boolean', description: 'probability ≥ threshold' },
          },
        },
        ModelPrediction: {
          type: 'object',
          required: ['name', 'modality', 'variant', 'versions', 'genres', 'predicted', 'timings'],
          properties: {
            name: { type: 'string', description: 'The model key' },
            modality: { type: 'string', enum: [...MODALITIES] },
            variant: { type: 'string' },
            members: { type: 'array', items: { type: 'string' }, description: 'Fusion only: the keys of the models it combines' },
            versions: { type: 'object', additionalProperties: { type: 'string' } },
            createdAt: { type: 'string' },
            gitCommit: { type: ['string', 'null'] },
            genres: { type: 'array', items: { $ref: '#/components/schemas/GenreScore' }, description: 'All genres, highest probability first' },
            predicted: { type: 'array', items: { type: 'string' }, description: 'Genres that pass their threshold, highest probability first' },
            timings: {
              type: 'object',
              properties: {
                waitMs: { type: 'number', description: 'Time queued for the micro-batch' },
                inferenceMs: { type: 'number', description: 'Duration of the batched model call' },
                batchSize: { type: 'integer', description: 'Requests served by that call' },
              },
            },
          },
        },
        Prediction: {
          type: 'object',
          required: ['models', 'input', 'timings'],
          properties: {
            models: keyedByModel('#/components/schemas/ModelPrediction', 'The answer of every model that applies to the input'),
            input: {
              type: 'object',
              properties: {
                poster: { type: 'object', properties: { format: { type: 'string' }, width: { type: 'integer' }, height: { type: 'integer' }, bytes: { type: 'integer' } } },
                overview: { type: 'object', properties: { chars: { type: 'integer' } } },
              },
            },
            timings: {
              type: 'object',
              properties: {
                decodeMs: { type: 'number', description: 'Poster probe + decode + resize' },
                inferenceMs: { type: 'number', description: 'From input ready to all model answers' },
                totalMs: { type: 'number', description: 'From request received to answer built' },
              },
            },
          },
        },
        ModelInfo: {
          type: 'object',
          properties: {
            name: { type: 'string', description: 'The model key' },
            modality: { type: 'string', enum: [...MODALITIES] },
            kind: { type: 'string', description: 'Which loader opens its directory (e.g. poster-classifier, sentence-classifier, fusion)' },
            variant: { type: 'string' },
            needs: { type: 'array', items: { type: 'string', enum: ['poster', 'overview'] }, description: 'What a request must carry for this model to answer' },
            input: { type: 'object', properties: { width: { type: 'integer' }, height: { type: 'integer' } }, description: 'Poster models: the size a poster is decoded to' },
            members: { type: 'array', items: { type: 'string' }, description: 'Fusion only: the keys of the models it combines' },
            versions: { type: 'object', additionalProperties: { type: 'string' } },
            metrics: { type: 'object' },
            genres: { type: 'array', items: { type: 'string' } },
            thresholds: { type: 'array', items: { type: 'number' } },
            preprocessing: { type: 'object' },
            gitCommit: { type: ['string', 'null'] },
            backend: { type: 'string', description: 'Backend the model was trained on' },
            createdAt: { type: 'string' },
          },
        },
        Models: {
          type: 'object',
          properties: {
            backend: { type: 'string', enum: [...BACKENDS], description: 'TensorFlow.js backend serving the models' },
            backendThreads: { type: ['integer', 'null'], description: 'Threads of that backend per model (wasm: XNNPACK threads)' },
            encoderRuntime: {
              type: 'object',
              properties: { name: { type: 'string', enum: ['onnxruntime', 'tfjs'] }, version: { type: 'string' } },
              description: 'Where the frozen encoders (e.g. the sentence model\'s USE-lite) run: onnxruntime-node and its version, or the TensorFlow.js backend above',
            },
            inference: { type: 'string', enum: [...INFERENCE_MODES], description: 'workers: each model in its own worker thread (each poster model in several); inline: all on the main thread' },
            models: keyedByModel('#/components/schemas/ModelInfo', 'The loaded models'),
            batching: { type: 'object', properties: { windowMs: { type: 'number' }, maxBatch: { type: 'integer' }, maxWaitMs: { type: 'number' } } },
          },
        },
      },
    },
  };
}
