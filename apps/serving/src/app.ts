import express, { type ErrorRequestHandler, type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import type { ServingConfig } from './config.js';
import { ApiError, errorBody } from './errors.js';
import { createMetrics, type ServingMetrics } from './metrics.js';
import type { ModelKey, ServingModels } from './models.js';
import { openApiDocument } from './openapi.js';
import { PosterDecoder } from './poster-decoder.js';
import { PAGE_SCRIPT_HASH, PAGE_STYLE_HASH, renderPage } from './page.js';
import { createPredictRequestParser, predictInputOf } from './predict-request.js';
import { ModelOutputError, Predictor, type ModelRun } from './predictor.js';

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
  let models: ServingModels | undefined;
  let predictor: Predictor | undefined;
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];
  /** Predict requests being parsed or decoded: they will reach the model batchers shortly. */
  let preparing = 0;

  const ready = Promise.resolve(options.models).then(
    async (loaded) => {
      models = loaded;
      predictor = new Predictor(loaded, config, metrics, () => preparing);
      metrics.tensorCounts = () => loaded.tensorCounts();
      await predictor.warmUp();
      if (state === 'loading') state = 'ready';
    },
    (error: unknown) => {
      state = 'failed';
      throw error;
    },
  );
  ready.catch(() => {}); // the owner observes the rejection; an unhandled one would crash the process

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  // Count and time every request, and track in-flight ones for graceful shutdown.
  app.use((req, res, next) => {
    const started = performance.now();
    inFlight++;
    if (state === 'draining') res.setHeader('Connection', 'close');
    let counted = false;
    const done = () => {
      if (counted) return;
      counted = true;
      inFlight--;
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      const labels = { method: req.method, route, status: String(res.statusCode) };
      const seconds = (performance.now() - started) / 1000;
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, seconds);
      const level = res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'debug';
      logger[level]({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(seconds * 1e4) / 10 }, 'request');
      if (inFlight === 0) {
        const waiters = idleWaiters;
        idleWaiters = [];
        waiters.forEach((w) => w());
      }
    };
    res.on('finish', done);
    res.on('close', done);
    next();
  });

  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          scriptSrc: [PAGE_SCRIPT_HASH],
          scriptSrcAttr: ["'none'"],
          styleSrc: [PAGE_STYLE_HASH],
          imgSrc: ["'self'", 'blob:', 'data:'],
          connectSrc: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
          objectSrc: ["'none'"],
        },
      },
      crossOriginResourcePolicy: { policy: config.corsOrigins.length ? 'cross-origin' : 'same-origin' },
    }),
  );

  // RFC 9112: an HTTP/1.1 request without Host is a 400. Node would answer it with an empty body
  // (server.ts turns its check off), so it is answered here, in the JSON shape.
  app.use((req, _res, next) => {
    if (req.httpVersion === '1.1' && req.headers.host === undefined) return next(new ApiError('BAD_REQUEST', 'an HTTP/1.1 request needs a Host header', { Connection: 'close' }));
    next();
  });

  if (config.corsOrigins.length) app.use(cors(config.corsOrigins));

  const page = renderPage({ maxOverviewChars: config.maxOverviewChars });
  const openapi = openApiDocument(config, API_VERSION);

  const requireReady: RequestHandler = (_req, _res, next) => {
    if (state === 'draining') return next(new ApiError('SHUTTING_DOWN', 'the server is shutting down; retry on another instance'));
    if (state !== 'ready') return next(new ApiError('NOT_READY', state === 'failed' ? 'the models failed to load' : 'the models are still loading; retry shortly'));
    next();
  };

  const parsePredictRequest = createPredictRequestParser(config);
  const decoder = new PosterDecoder(config, metrics);

  app.get('/', (_req, res) => {
    res.type('html').setHeader('Cache-Control', 'no-cache');
    res.send(page);
  });

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', (_req, res, next) => {
    if (state === 'ready') return void res.json({ status: 'ready' });
    requireReady(_req, res, next);
  });

  app.get('/metrics', async (_req, res, next) => {
    try {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    } catch (error) {
      next(error);
    }
  });

  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  app.get('/v1/models', requireReady, (_req, res) => {
    const loaded = models!;
    const info: Record<string, unknown> = {};
    for (const key of ['cnn', 'lstm', 'fusion'] as const) {
      const m = loaded[key]?.metadata;
      if (!m) continue;
      info[key] = {
        name: m.name, modality: m.modality, variant: m.variant, versions: m.versions, metrics: m.metrics,
        genres: m.genres, thresholds: m.thresholds, preprocessing: m.preprocessing, gitCommit: m.gitCommit,
        backend: m.backend, createdAt: m.createdAt,
      };
    }
    res.json({
      backend: loaded.runtime.backend, backendThreads: loaded.runtime.threads, inference: loaded.runtime.inference, models: info,
      batching: { windowMs: config.batchWindowMs, maxBatch: config.maxBatch, maxWaitMs: config.batchMaxWaitMs },
    });
  });

  const countPreparing: RequestHandler = (_req, res, next) => {
    preparing++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      preparing--;
    };
    res.locals['releasePreparing'] = release;
    res.on('close', release);
    next();
  };

  app.post('/v1/predict', requireReady, countPreparing, parsePredictRequest, async (req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    try {
      const { poster: file, overview } = predictInputOf(res);
      const loaded = models!;
      let poster: Uint8Array | undefined;
      let posterInfo: { format: string; width: number; height: number; bytes: number } | undefined;
      const decodeStarted = performance.now();
      if (file) {
        const decoded = await decoder.decode(file, loaded.cnn.imageSize);
        poster = decoded.pixels;
        posterInfo = { format: decoded.header.format, width: decoded.header.width, height: decoded.header.height, bytes: file.length };
      }
      const decodeMs = performance.now() - decodeStarted;

      const inferenceStarted = performance.now();
      (res.locals['releasePreparing'] as () => void)();
      const runs = await predictor!.predict({ poster, overview });
      const inferenceMs = performance.now() - inferenceStarted;

      const out: Record<string, unknown> = {};
      for (const key of ['cnn', 'lstm', 'fusion'] as const) {
        const run = runs[key];
        if (run) out[key] = describeRun(loaded, key, run);
      }
      res.json({
        models: out,
        input: { ...(posterInfo ? { poster: posterInfo } : {}), ...(overview !== undefined ? { overview: { chars: [...overview].length } } : {}) },
        timings: { decodeMs: round(decodeMs, 3), inferenceMs: round(inferenceMs, 3), totalMs: round(performance.now() - started, 3) },
      });
    } catch (error) {
      next(error);
    }
  });

  // Known paths with a method they do not support get 405 and an Allow header.
  const allowed: Record<string, string> = {
    '/': 'GET, HEAD', '/healthz': 'GET, HEAD', '/readyz': 'GET, HEAD', '/metrics': 'GET, HEAD', '/openapi.json': 'GET, HEAD',
    '/v1/models': 'GET, HEAD', '/v1/predict': 'POST',
  };
  for (const [path, methods] of Object.entries(allowed)) {
    app.all(path, (req, _res, next) => next(new ApiError('METHOD_NOT_ALLOWED', `${req.method} is not supported on ${path}; use ${methods}`, { Allow: methods })));
  }

  app.use((req, _res, next) => next(new ApiError('NOT_FOUND', `no route for ${req.method} ${req.path}; see /openapi.json`)));

  const errorHandler: ErrorRequestHandler = (error: unknown, req, res, _next) => {
    let apiError: ApiError;
    if (error instanceof ApiError) {
      apiError = error;
    } else if (error instanceof ModelOutputError) {
      logger.error({ model: error.model, modelName: error.modelName, invalid: error.invalid, example: String(error.example), method: req.method, path: req.path }, 'model produced an invalid probability');
      apiError = new ApiError('MODEL_OUTPUT_INVALID', `the ${error.model} model produced an invalid probability for this input; the server logged the details`);
    } else {
      logger.error({ err: error, method: req.method, path: req.path }, 'request failed');
      apiError = new ApiError('INTERNAL', 'internal error; the server logged the details');
    }
    if (res.headersSent) {
      // Too late for a clean error: cut the connection so the client sees a failure, not a partial body.
      res.destroy();
      return;
    }
    for (const [name, value] of Object.entries(apiError.headers)) res.setHeader(name, value);
    res.status(apiError.status).json(errorBody(apiError));
  };
  app.use(errorHandler);

  return {
    app,
    metrics,
    ready,
    isReady: () => state === 'ready',
    inFlight: () => inFlight,
    decoder,
    async drain() {
      if (state !== 'failed') state = 'draining';
      if (inFlight > 0) await new Promise<void>((resolve) => idleWaiters.push(resolve));
      await predictor?.close();
    },
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function describeRun(models: ServingModels, key: ModelKey, run: ModelRun) {
  const metadata = models[key]!.metadata;
  const genres = metadata.genres
    .map((genre, i) => {
      const probability = run.probabilities[i] ?? 0;
      const threshold = metadata.thresholds[i]!;
      return { genre, probability: round(probability, 6), threshold, predicted: probability >= threshold };
    })
    .sort((a, b) => b.probability - a.probability);
  return {
    name: metadata.name,
    variant: metadata.variant,
    versions: metadata.versions,
    createdAt: metadata.createdAt,
    gitCommit: metadata.gitCommit,
    genres,
    predicted: genres.filter((g) => g.predicted).map((g) => g.genre),
    timings: { waitMs: round(run.waitMs, 3), inferenceMs: round(run.runMs, 3), batchSize: run.batchSize },
  };
}

/** Minimal CORS for an allow-list of origins ('*' allows any). Only installed when origins are configured. */
function cors(origins: string[]): RequestHandler {
  const any = origins.includes('*');
  return (req, res, next) => {
    const origin = req.headers.origin;
    res.vary('Origin');
    if (!origin || !(any || origins.includes(origin))) return next();
    res.setHeader('Access-Control-Allow-Origin', origin);
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type');
      res.setHeader('Access-Control-Max-Age', '600');
      return void res.status(204).end();
    }
    next();
  };
}
