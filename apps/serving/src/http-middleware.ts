// The HTTP plumbing around the routes: request accounting (metrics, log line, in-flight count for a
// graceful stop), security headers, CORS, the Host check, 404/405, and the one error handler that
// turns every failure into the registry's JSON shape.
import type { ErrorRequestHandler, RequestHandler } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { ApiError, errorBody } from './errors.js';
import type { ServingMetrics } from './metrics.js';
import { PAGE_SCRIPT_HASH, PAGE_STYLE_HASH } from './page.js';
import { ModelOutputError } from './predictor.js';

/** Counts and times every request, logs it, and knows how many are in flight (for a graceful stop). */
export class RequestTracker {
  private count = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly metrics: ServingMetrics,
    private readonly logger: Logger,
    /** True while the server drains: answers then ask clients to close their connection. */
    private readonly draining: () => boolean,
  ) {}

  get inFlight(): number {
    return this.count;
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  readonly middleware: RequestHandler = (req, res, next) => {
    const started = performance.now();
    this.count++;
    // While draining, every answer closes its connection, also one to a request that came before the
    // stop: a kept-alive connection the client reuses just as the server closes it would be a reset.
    const writeHead = res.writeHead;
    res.writeHead = ((...args: Parameters<typeof res.writeHead>) => {
      if (this.draining() && !res.headersSent) res.setHeader('Connection', 'close');
      return writeHead.apply(res, args);
    }) as typeof res.writeHead;
    let counted = false;
    const done = () => {
      if (counted) return;
      counted = true;
      this.count--;
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      const labels = { method: req.method, route, status: String(res.statusCode) };
      const seconds = (performance.now() - started) / 1000;
      this.metrics.httpRequests.inc(labels);
      this.metrics.httpDuration.observe(labels, seconds);
      // 503 is a state of the server (loading, stopping, shedding load), not a fault: not at error level.
      const level = res.statusCode >= 500 && res.statusCode !== 503 ? 'error' : res.statusCode >= 400 ? 'warn' : 'debug';
      this.logger[level]({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(seconds * 1e4) / 10 }, 'request');
      if (this.count === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        waiters.forEach((w) => w());
      }
    };
    res.on('finish', done);
    res.on('close', done);
    next();
  };
}

/** helmet, with a CSP that allows the page's own inline style and script by hash and nothing else. */
export function securityHeaders(options: { cors: boolean }): RequestHandler {
  return helmet({
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
    crossOriginResourcePolicy: { policy: options.cors ? 'cross-origin' : 'same-origin' },
  });
}

/**
 * RFC 9112: an HTTP/1.1 request without Host is a 400. Node would answer it with an empty body
 * (server.ts turns its check off), so it is answered here, in the JSON shape.
 */
export const requireHost: RequestHandler = (req, _res, next) => {
  if (req.httpVersion === '1.1' && req.headers.host === undefined) return next(new ApiError('BAD_REQUEST', 'an HTTP/1.1 request needs a Host header', { Connection: 'close' }));
  next();
};

/** Minimal CORS for an allow-list of origins ('*' allows any). Only installed when origins are configured. */
export function cors(origins: string[]): RequestHandler {
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

/** For a known path reached with another method: 405 with an Allow header. */
export function methodNotAllowed(path: string, methods: string): RequestHandler {
  return (req, _res, next) => next(new ApiError('METHOD_NOT_ALLOWED', `${req.method} is not supported on ${path}; use ${methods}`, { Allow: methods }));
}

export const notFound: RequestHandler = (req, _res, next) => next(new ApiError('NOT_FOUND', `no route for ${req.method} ${req.path}; see /openapi.json`));

/** Every failure → the registry's JSON error; server faults are logged with their stack and never sent. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
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
}
