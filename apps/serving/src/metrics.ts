import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Prometheus metrics of one app instance (own registry, so several apps can live in one process). */
export interface ServingMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  inferenceDuration: Histogram<'model'>;
  batchSize: Histogram<'model'>;
  queueWait: Histogram<'model'>;
  invalidOutputs: Counter<'model'>;
  liveTensors: Gauge<'runtime'>;
  posterDecodeDuration: Histogram<'lane' | 'outcome'>;
  largePostersWaiting: Gauge;
  posterDecodesRunning: Gauge;
  /** Where liveTensors reads from at each scrape (set once the models are loaded). */
  tensorCounts?: () => Promise<Record<string, number>>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): ServingMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const metrics: ServingMetrics = {
    registry,
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from request received to response finished, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    inferenceDuration: new Histogram({
      name: 'model_inference_seconds',
      help: 'Duration of one batched model call, by model',
      labelNames: ['model'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'model_batch_size',
      help: 'Requests served by one batched model call, by model',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: 'model_queue_wait_seconds',
      help: 'Time a request waited for its micro-batch to start, by model',
      labelNames: ['model'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
    posterDecodeDuration: new Histogram({
      name: 'poster_decode_seconds',
      help: 'Poster header check + decode + resize, by lane (in-process: the least work; small: the pool of decoder processes; large: slow to decode, one at a time) and outcome (ok, error); a decode cut by the deadline is counted when its process is killed (with --decode-processes 0, a small one when libvips finishes)',
      labelNames: ['lane', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    largePostersWaiting: new Gauge({
      name: 'poster_decode_large_waiting',
      help: 'Posters slow to decode (much decode work, or GIF, TIFF, AVIF) waiting for the one-at-a-time decoder',
      registers: [registry],
    }),
    posterDecodesRunning: new Gauge({
      name: 'poster_decodes_running',
      help: 'Poster decodes running (with --decode-processes 0, including small ones whose request was already answered at the deadline)',
      registers: [registry],
    }),
    invalidOutputs: new Counter({
      name: 'model_invalid_outputs_total',
      help: 'Requests answered 500 MODEL_OUTPUT_INVALID because a model produced a non-finite probability (or one outside [0, 1]), by model',
      labelNames: ['model'],
      registers: [registry],
    }),
    liveTensors: new Gauge({
      name: 'tfjs_live_tensors',
      help: 'Tensors alive in each TensorFlow.js runtime (a model worker, or the process): a number that grows means a leak',
      labelNames: ['runtime'],
      registers: [registry],
      async collect() {
        const counts = await metrics.tensorCounts?.().catch(() => undefined);
        this.reset();
        for (const [runtime, count] of Object.entries(counts ?? {})) this.set({ runtime }, count);
      },
    }),
  };
  return metrics;
}
