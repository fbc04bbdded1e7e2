import { BACKENDS } from '@filmgenre/tf-runtime';
import { availableParallelism } from 'node:os';
import yargs from 'yargs';
import { z } from 'zod';

export const ENV_PREFIX = 'SERVING';

export const INFERENCE_MODES = ['workers', 'inline'] as const;
export type Inference = (typeof INFERENCE_MODES)[number];

export const ServingConfigSchema = z.object({
  modelsDir: z.string().min(1).default('models'),
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65_535).default(3000),
  /** Largest poster upload accepted, in bytes (a larger one gets 413). */
  maxUploadBytes: z.number().int().positive().default(10 * 1024 * 1024),
  maxOverviewChars: z.number().int().positive().default(10_000),
  /**
   * Largest poster in pixels (width × height read from the header before decoding). Decoding a
   * 30,000 × 30,000 PNG of a few kB would need 2.7 GB of RGB: such files are refused up front.
   */
  maxInputPixels: z.number().int().positive().default(25_000_000),
  /** How long the first request of a micro-batch waits for others before the model runs. */
  batchWindowMs: z.number().min(0).max(1_000).default(2),
  maxBatch: z.number().int().min(1).max(1_024).default(32),
  /**
   * Under load, how long a micro-batch may keep waiting past its window for requests that are
   * already being parsed and decoded (never when none are, so a lone request never waits for it).
   */
  batchMaxWaitMs: z.number().min(0).max(10_000).default(50),
  /** Origins allowed to call the API from a browser; empty means no CORS headers at all. */
  corsOrigins: z.array(z.string().min(1)).default([]),
  backend: z.enum(['auto', ...BACKENDS]).default('auto'),
  /**
   * `workers`: each model in its own worker thread, so models and request handling run on different
   * cores at once; `inline`: everything on the main thread (one tfjs instance, less memory).
   */
  inference: z.enum(INFERENCE_MODES).default('workers'),
  /**
   * XNNPACK threads per model (wasm). 1 by default: with a worker per model the cores are already
   * shared between models, and XNNPACK's spinning threads then get in each other's way. Measured on
   * 2 cores, one poster worker with 2 threads instead of two with 1: c=1 p99 126–174 vs 76–92 ms,
   * c=32 28–41 vs 36–45 req/s (docs/benchmarks/serving.md).
   */
  modelThreads: z.number().int().min(1).max(64).default(1),
  /**
   * Worker threads for the poster model (inference `workers`), which costs ~5× the others per film:
   * several batches of posters run at once, one per core. Default: one per core.
   */
  posterWorkers: z.number().int().min(1).max(64).default(() => availableParallelism()),
  /**
   * Largest batch of posters per CNN call (the other models use maxBatch). The MobileNetV2 trunk is
   * compute-bound: larger batches hardly lower its cost per poster, they only make each call, and
   * so the wait of the requests behind it, longer; with one batch per poster worker, 8 keeps both busy.
   */
  maxPosterBatch: z.number().int().min(1).max(1_024).default(8),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** On SIGTERM: how long in-flight requests may take before the process exits anyway. */
  shutdownTimeoutMs: z.number().int().min(0).default(10_000),
});
export type ServingConfig = z.infer<typeof ServingConfigSchema>;

/** The defaults, for tests and embedding; every field can be overridden. */
export function defaultConfig(overrides: Partial<ServingConfig> = {}): ServingConfig {
  return ServingConfigSchema.parse(overrides);
}

/**
 * Reads flags and SERVING_* environment variables (a flag wins over the environment), then
 * validates the whole with zod so a bad value stops the process with a readable message.
 */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServingConfig {
  const args = yargs([...argv, ...envArgs(argv, env)])
    .scriptName('serving')
    .usage('$0 [options]\n\nServes genre predictions over HTTP. Every option can also be set as SERVING_<OPTION> (e.g. SERVING_PORT=8080).')
    .options({
      'models-dir': { type: 'string', describe: 'directory holding cnn/, lstm/ and optionally fusion/', default: 'models' },
      host: { type: 'string', describe: 'address to listen on (0.0.0.0 for all interfaces)', default: '127.0.0.1' },
      port: { type: 'number', describe: 'port to listen on (0 = any free port)', default: 3000 },
      'max-upload-bytes': { type: 'number', describe: 'largest poster upload in bytes', default: 10 * 1024 * 1024 },
      'max-overview-chars': { type: 'number', describe: 'longest overview in characters', default: 10_000 },
      'max-input-pixels': { type: 'number', describe: 'largest poster in pixels (width × height)', default: 25_000_000 },
      'batch-window-ms': { type: 'number', describe: 'micro-batch window in milliseconds', default: 2 },
      'max-batch': { type: 'number', describe: 'largest micro-batch per model call', default: 32 },
      'batch-max-wait-ms': { type: 'number', describe: 'longest wait of a micro-batch for requests still being decoded', default: 50 },
      'cors-origin': { type: 'string', array: true, describe: 'origin allowed by CORS (repeat, or comma-separated); none = CORS off', default: [] },
      backend: { type: 'string', describe: `TensorFlow.js backend: auto, ${BACKENDS.join(', ')}`, default: 'auto' },
      inference: { type: 'string', describe: `where models run: ${INFERENCE_MODES.join(' (one worker thread per model), ')} (main thread)`, default: 'workers' },
      'model-threads': { type: 'number', describe: 'XNNPACK threads per model (wasm backend)', default: 1 },
      'poster-workers': { type: 'number', describe: 'worker threads for the poster model (default: one per core)' },
      'max-poster-batch': { type: 'number', describe: 'largest micro-batch per poster-model call', default: 8 },
      'log-level': { type: 'string', describe: 'pino log level', default: 'info' },
      'shutdown-timeout-ms': { type: 'number', describe: 'grace period for in-flight requests on SIGTERM', default: 10_000 },
    })
    .strict()
    .help()
    .version(false)
    .parserConfiguration({ 'camel-case-expansion': true })
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new ConfigError(message);
    });
  const parsed = args.parseSync() as Record<string, unknown>;
  if (parsed['help']) throw new HelpRequested();
  const corsOrigins = ((parsed['corsOrigin'] as string[] | undefined) ?? [])
    .flatMap((o) => String(o).split(','))
    .map((o) => o.trim())
    .filter(Boolean);
  const result = ServingConfigSchema.safeParse({
    modelsDir: parsed['modelsDir'],
    host: parsed['host'],
    port: parsed['port'],
    maxUploadBytes: parsed['maxUploadBytes'],
    maxOverviewChars: parsed['maxOverviewChars'],
    maxInputPixels: parsed['maxInputPixels'],
    batchWindowMs: parsed['batchWindowMs'],
    maxBatch: parsed['maxBatch'],
    batchMaxWaitMs: parsed['batchMaxWaitMs'],
    corsOrigins,
    backend: parsed['backend'],
    inference: parsed['inference'],
    modelThreads: parsed['modelThreads'],
    maxPosterBatch: parsed['maxPosterBatch'],
    posterWorkers: parsed['posterWorkers'],
    logLevel: parsed['logLevel'],
    shutdownTimeoutMs: parsed['shutdownTimeoutMs'],
  });
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `--${kebab(i.path.join('.'))}: ${i.message}`).join('; '));
  }
  return result.data;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Thrown after yargs printed --help, so main can exit 0. */
export class HelpRequested extends Error {
  override name = 'HelpRequested';
}

const FLAGS = [
  'models-dir', 'host', 'port', 'max-upload-bytes', 'max-overview-chars', 'max-input-pixels', 'batch-window-ms', 'max-batch', 'batch-max-wait-ms',
  'cors-origin', 'backend', 'inference', 'model-threads', 'poster-workers', 'max-poster-batch', 'log-level', 'shutdown-timeout-ms',
] as const;

/**
 * SERVING_<FLAG> variables as extra flags, for the flags not given on the command line (so a flag
 * wins). Done by hand because yargs' .env() reads a copy of process.env taken when it was imported.
 */
function envArgs(argv: string[], env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const flag of FLAGS) {
    const value = env[`${ENV_PREFIX}_${flag.toUpperCase().replace(/-/g, '_')}`];
    if (value === undefined || value === '') continue;
    if (argv.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`))) continue;
    out.push(`--${flag}`, value);
  }
  // The usual names of container platforms, when the SERVING_ ones are not set.
  if (env['PORT'] && !env[`${ENV_PREFIX}_PORT`] && !argv.some((a) => a === '--port' || a.startsWith('--port='))) out.push('--port', env['PORT']);
  return out;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
