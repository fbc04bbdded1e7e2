// The app: its state (loading → ready → draining), and the routes wired to the modules that do the
// work: predict-request.ts (parsing and validation), poster-decoder.ts, predict-route.ts,
// http-middleware.ts (accounting, headers, errors), openapi.ts.
import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { ServingConfig } from './config.js';
import { ApiError } from './errors.js';
import { cors, errorHandler, methodNotAllowed, notFound, RequestTracker, requireHost, securityHeaders } from './http-middleware.js';
import { createMetrics, type ServingMetrics } from './metrics.js';
import { inputsNeeded, metadataOf, modelKeys, type ServingModels } from './models.js';
import { openApiDocument } from './openapi.js';
import { renderPage } from './page.js';
import { PosterDecoder } from './poster-decoder.js';
import { createPredictRequestParser } from './predict-request.js';
import { createPredictHandler, PreparingCounter } from './predict-route.js';
import { Predictor } from './predictor.js';

export const API_VERSION = '1.0.0';

export interface CreateAppOptions {
  /** Loaded models, or a promise of them: until it resolves /readyz answers 503 and /v1/* NOT_READY. */
  models: ServingModels | Promise<ServingModels>;
  config: ServingConfig;
  logger: Logger;
  metrics?: ServingMetrics;
}

export interface ServingApp {
  /** The request handler: give it to http.createServer or app.listen. */
  app: Express;
  metrics: ServingMetrics;
  /** Resolves when the models are loaded (rejects if loading failed). */
  ready: Promise<void>;
  isReady(): boolean;
  /** Requests being handled right now. */
  inFlight(): number;
  /** The poster decoder (its `active` decodes may outlive their requests, see poster-decoder.ts). */
  decoder: PosterDecoder;
  /**
   * Starts a graceful stop: /readyz turns 503, new predictions get SHUTTING_DOWN, responses ask
   * clients to close their connection; resolves once in-flight requests and queued model calls are
   * done. Does not dispose the models (their owner does).
   */
  drain(): Promise<void>;
}

export function createApp(options: CreateAppOptions): ServingApp {
  const { config, logger } = options;
  const metrics = options.metrics ?? createMetrics();
  let state: 'loading' | 'ready' | 'failed' | 'draining' = 'loading';
  let loaded: { models: ServingModels; predictor: Predictor } | undefined;
  const preparing = new PreparingCounter();
  const tracker = new RequestTracker(metrics, logger, () => state === 'draining');
  const decoder = new PosterDecoder(config, metrics);

  const ready = Promise.resolve(options.models).then(
    async (models) => {
      const predictor = new Predictor(models, config, metrics, () => preparing.count);
      loaded = { models, predictor };
      metrics.tensorCounts = () => models.tensorCounts();
      if (state === 'loading') state = 'ready';
    },
    (error: unknown) => {
      state = 'failed';
      throw error;
    },
  );
  ready.catch(() => {}); // the owner observes the rejection; an unhandled one would crash the process

  const requireReady: RequestHandler = (_req, _res, next) => {
    if (state === 'draining') return next(new ApiError('SHUTTING_DOWN', 'the server is shutting down; retry on another instance'));
    if (state !== 'ready') return next(new ApiError('NOT_READY', state === 'failed' ? 'the models failed to load' : 'the models are still loading; retry shortly'));
    next();
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use(tracker.middleware);
  app.use(securityHeaders({ cors: config.corsOrigins.length > 0 }));
  app.use(requireHost);
  if (config.corsOrigins.length) app.use(cors(config.corsOrigins));

  const page = renderPage({ maxOverviewChars: config.maxOverviewChars });
  app.get('/', (_req, res) => {
    res.type('html').setHeader('Cache-Control', 'no-cache');
    res.send(page);
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', (req, res, next) => {
    // Ready with what could be opened; a model left out (a stale fusion) is named with the reason.
    if (state === 'ready') return void res.json({ status: 'ready', ...(loaded && Object.keys(loaded.models.unavailable).length ? { unavailable: loaded.models.unavailable } : {}) });
    requireReady(req, res, next);
  });

  app.get('/metrics', async (_req, res, next) => {
    try {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    } catch (error) {
      next(error);
    }
  });

  // Until the models are loaded the document says what any instance answers; then it names this one's models.
  let openapi = openApiDocument(config, API_VERSION);
  void ready.then(() => {
    if (loaded) openapi = openApiDocument(config, API_VERSION, loaded.models);
  }, () => {});
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  app.get('/v1/models', requireReady, (_req, res) => {
    const { models } = loaded!;
    const info: Record<string, unknown> = {};
    for (const key of modelKeys(models)) {
      const m = metadataOf(models, key);
      const member = models.members[key];
      info[key] = {
        name: m.name, modality: m.modality, kind: m.kind, variant: m.variant,
        needs: inputsNeeded(models, key),
        ...(member?.modality === 'image' ? { input: { width: member.model.inputWidth, height: member.model.inputHeight } } : {}),
        ...(m.members ? { members: Object.keys(m.members) } : {}),
        versions: m.versions, metrics: m.metrics,
        genres: m.genres, thresholds: m.thresholds, preprocessing: m.preprocessing, gitCommit: m.gitCommit,
        backend: m.backend, encoderRuntime: m.encoderRuntime, createdAt: m.createdAt,
      };
    }
    res.json({
      backend: models.runtime.backend, backendThreads: models.runtime.threads, encoderRuntime: models.runtime.encoders, inference: models.runtime.inference, models: info,
      unavailable: models.unavailable,
      batching: { windowMs: config.batchWindowMs, maxBatch: config.maxBatch, maxWaitMs: config.batchMaxWaitMs },
    });
  });

  app.post('/v1/predict', requireReady, createPredictRequestParser(config), preparing.middleware, createPredictHandler({ decoder, loaded: () => loaded!, queueDeadlineMs: config.queueDeadlineMs }));

  // Known paths with a method they do not support get 405 and an Allow header.
  const allowed: Record<string, string> = {
    '/': 'GET, HEAD', '/healthz': 'GET, HEAD', '/readyz': 'GET, HEAD', '/metrics': 'GET, HEAD', '/openapi.json': 'GET, HEAD',
    '/v1/models': 'GET, HEAD', '/v1/predict': 'POST',
  };
  for (const [path, methods] of Object.entries(allowed)) app.all(path, methodNotAllowed(path, methods));
  app.use(notFound);
  app.use(errorHandler(logger));

  return {
    app,
    metrics,
    ready,
    isReady: () => state === 'ready',
    inFlight: () => tracker.inFlight,
    decoder,
    async drain() {
      if (state !== 'failed') state = 'draining';
      await tracker.idle();
      decoder.close();
      await loaded?.predictor.close();
    },
  };
}
