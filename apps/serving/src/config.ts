import { kebabCase } from '@filmgenre/core';
import { BACKENDS } from '@filmgenre/tf-runtime';
import { availableParallelism } from 'node:os';
import { levels, type LevelWithSilent } from 'pino';
import yargs from 'yargs';
import { z } from 'zod';

export const ENV_PREFIX = 'SERVING';

export const INFERENCE_MODES = ['workers', 'inline'] as const;
export type Inference = (typeof INFERENCE_MODES)[number];

/** pino's own level names, plus 'silent'. */
const LOG_LEVELS = [...Object.keys(levels.values), 'silent'] as unknown as [LevelWithSilent, ...LevelWithSilent[]];

interface OptionSpec<S extends z.ZodType = z.ZodType> {
  /** Validation of a given value (the default is added from `default`). */
  schema: S;
  /** The default, or a function computing it at start-up. */
  default: z.output<S> | (() => z.output<S>);
  /** How the default reads in --help and the README when it is not a plain value. */
  defaultText?: string;
  /** One line for --help (the README's table says the same, at more length). */
  describe: string;
  /** The command-line flag when it is not the key in kebab-case. */
  flag?: string;
  /** How the flag's value is read: a number, a string, or a list (repeated or comma-separated). */
  type: 'number' | 'string' | 'list';
}

const option = <S extends z.ZodType>(spec: OptionSpec<S>) => spec;

/**
 * Every option of the app, once: its validation, its default, its help line. The zod schema, the
 * yargs flags, the SERVING_* environment names and the --help text all derive from this object, and a
 * test checks the README's options table against it.
 */
export const OPTIONS = {
  modelsDir: option({ schema: z.string().min(1), default: 'models', type: 'string', describe: 'directory holding the models to serve, one sub-directory each (e.g. cnn/, sentence/, fusion/)' }),
  /**
   * A fusion fitted on a member since retrained alone: `serve-members` serves every other model and
   * names the fusion unavailable (with the reason) in /v1/models, /readyz and the log; `refuse` exits.
   */
  staleFusion: option({ schema: z.enum(['serve-members', 'refuse']), default: 'serve-members', type: 'string', describe: 'a fusion fitted on other members than those present: serve-members (and report it unavailable) or refuse to start' }),
  host: option({ schema: z.string().min(1), default: '127.0.0.1', type: 'string', describe: 'address to listen on (0.0.0.0 for all interfaces)' }),
  port: option({ schema: z.number().int().min(0).max(65_535), default: 3000, type: 'number', describe: 'port to listen on (0 = any free port)' }),
  /** Largest poster upload accepted, in bytes (a larger one gets 413). */
  maxUploadBytes: option({ schema: z.number().int().positive(), default: 10 * 1024 * 1024, type: 'number', describe: 'largest poster upload in bytes' }),
  /**
   * Request bodies buffered at once, in bytes, over all predict requests: each reserves its
   * Content-Length before it is read; one that does not fit gets 503 OVERLOADED with Retry-After.
   */
  maxBufferedUploadBytes: option({ schema: z.number().int().positive(), default: 64 * 1024 * 1024, type: 'number', describe: 'request bodies buffered at once, in bytes, over all predict requests (more → 503)' }),
  maxOverviewChars: option({ schema: z.number().int().positive(), default: 10_000, type: 'number', describe: 'longest overview in characters' }),
  /**
   * Largest poster in pixels (width × height read from the header before decoding). Decoding a
   * 30,000 × 30,000 PNG of a few kB would need 2.7 GB of RGB: such files are refused up front.
   */
  maxInputPixels: option({ schema: z.number().int().positive(), default: 25_000_000, type: 'number', describe: 'largest poster in pixels (width × height), read from the header before decoding' }),
  /** Longest side of a poster, read from the header before decoding. */
  maxInputSide: option({ schema: z.number().int().positive(), default: 10_000, type: 'number', describe: 'longest poster side in pixels, read from the header before decoding' }),
  /**
   * Longest side over shortest side. A 97 KB PNG of 1 × 25,000,000 pixels (within the pixel limit)
   * took 7–9 s to decode here; within a ratio of 10 the worst measured decode was ≈ 1 s.
   */
  maxAspectRatio: option({ schema: z.number().min(1), default: 10, type: 'number', describe: 'largest ratio of the longer poster side to the shorter one, read from the header' }),
  /**
   * Scans of a JPEG, counted from its markers before decoding: decode time grows with them (a 654 KB
   * 1400 × 1400 JPEG of 50,000 scans took 35 s; 1,000 scans 0.4 s). Encoders write about 10.
   */
  maxJpegScans: option({ schema: z.number().int().min(1), default: 100, type: 'number', describe: 'most scans accepted in a JPEG poster, counted before decoding' }),
  /**
   * Frames of a GIF, counted from its blocks before its header is read: libvips's header read walks
   * every frame (a 10 MB GIF of 700,000 frames: 884 ms of CPU); posters use only the first.
   */
  maxGifFrames: option({ schema: z.number().int().min(1), default: 1_000, type: 'number', describe: 'most frames accepted in a GIF poster, counted before its header is read' }),
  /** A poster's decode is answered with POSTER_DECODE_TIMEOUT when it takes longer than this. */
  decodeTimeoutMs: option({ schema: z.number().int().positive(), default: 3_000, type: 'number', describe: 'deadline of one poster decode (and of its wait for the large-poster decoder)' }),
  /**
   * Posters whose decode work is over this many pixels (a JPEG's scans add to it; GIF, TIFF and AVIF
   * always count as over) are decoded one at a time, in a process at a lower CPU priority, so that
   * the usual posters never wait behind them.
   */
  largePosterPixels: option({ schema: z.number().int().min(0), default: 2_000_000, type: 'number', describe: 'posters of more decode work than this many pixels (a JPEG\'s scans add to it) are decoded one at a time' }),
  /**
   * Posters of at most this much decode work (in pixels of a baseline JPEG; the dataset's posters are
   * 45,000) are decoded in the server process, sparing them the pool's IPC round trip; the costliest
   * files at this limit take a few ms of CPU (poster-decoder.test.ts).
   */
  inProcessDecodePixels: option({ schema: z.number().int().min(0), default: 250_000, type: 'number', describe: 'posters of at most this much decode work (pixels) are decoded in the server process; more goes to the decoder processes' }),
  /**
   * Processes decoding the posters between --in-process-decode-pixels and --large-poster-pixels of
   * work, each killed at a decode's deadline and replaced, so that no poster holds a decoder past it.
   * 0 decodes them in the server process instead (a decode past its deadline then runs on in libvips).
   */
  decodeProcesses: option({ schema: z.number().int().min(0).max(64), default: () => availableParallelism(), defaultText: 'one per core', type: 'number', describe: 'processes decoding posters of more work than --in-process-decode-pixels, killed at the deadline (0: in the server process, not stoppable)' }),
  /**
   * Load shedding: a predict request whose models would start later than this, behind the work
   * already queued (estimated from the queue and the measured time per item), gets 503 OVERLOADED
   * with Retry-After instead of waiting.
   */
  queueDeadlineMs: option({ schema: z.number().int().positive(), default: 2_000, type: 'number', describe: 'longest estimated wait for the models; a request over it gets 503 OVERLOADED + Retry-After' }),
  /** How long the first request of a micro-batch waits for others before the model runs. */
  batchWindowMs: option({ schema: z.number().min(0).max(1_000), default: 2, type: 'number', describe: 'micro-batch window in milliseconds' }),
  maxBatch: option({ schema: z.number().int().min(1).max(1_024), default: 32, type: 'number', describe: 'largest micro-batch per model call' }),
  /**
   * Under load, how long a micro-batch may keep waiting past its window for requests that are
   * already being parsed and decoded (never when none are, so a lone request never waits for it).
   */
  batchMaxWaitMs: option({ schema: z.number().min(0).max(10_000), default: 50, type: 'number', describe: 'longest wait of a micro-batch for requests still being decoded' }),
  /** Origins allowed to call the API from a browser; empty means no CORS headers at all. */
  corsOrigins: option({
    schema: z.array(z.string().min(1)), default: () => [], defaultText: 'none', type: 'list', flag: 'cors-origin',
    describe: 'origin allowed by CORS (repeat, or comma-separated; * for any); none = CORS off',
  }),
  backend: option({ schema: z.enum(['auto', ...BACKENDS]), default: 'auto', type: 'string', describe: `TensorFlow.js backend: auto, ${BACKENDS.join(', ')}` }),
  /**
   * `workers`: each model in its own worker thread, so models and request handling run on different
   * cores at once; `inline`: everything on the main thread (one tfjs instance, less memory).
   */
  inference: option({ schema: z.enum(INFERENCE_MODES), default: 'workers', type: 'string', describe: 'where models run: workers (one worker thread per model) or inline (main thread)' }),
  /**
   * XNNPACK threads per model (wasm). 1 by default: with a worker per model the cores are already
   * shared between models, and XNNPACK's spinning threads then get in each other's way. Measured on
   * 2 cores, one poster worker with 2 threads instead of two with 1: c=1 p99 126–174 vs 76–92 ms,
   * c=32 28–41 vs 36–45 req/s (docs/benchmarks/serving.md).
   */
  modelThreads: option({ schema: z.number().int().min(1).max(64), default: 1, type: 'number', describe: 'XNNPACK threads per model (wasm backend)' }),
  /**
   * Worker threads for the poster model (inference `workers`), which costs ~5× the others per film:
   * several batches of posters run at once, one per core. Default: one per core.
   */
  posterWorkers: option({ schema: z.number().int().min(1).max(64), default: () => availableParallelism(), defaultText: 'one per core', type: 'number', describe: 'worker threads for each poster model' }),
  /**
   * Largest batch of posters per CNN call (the other models use maxBatch). The MobileNetV2 trunk is
   * compute-bound: larger batches hardly lower its cost per poster, they only make each call, and
   * so the wait of the requests behind it, longer; with one batch per poster worker, 8 keeps both busy.
   */
  maxPosterBatch: option({ schema: z.number().int().min(1).max(1_024), default: 8, type: 'number', describe: 'largest micro-batch per poster-model call' }),
  /** Node's maxHeaderSize: request line + headers; more is answered 431 HEADERS_TOO_LARGE (JSON). */
  maxHeaderBytes: option({ schema: z.number().int().min(1_024).max(1_048_576), default: 16_384, type: 'number', describe: 'largest request line + headers in bytes (more → 431)' }),
  /**
   * Open connections at most (each holds a file descriptor). Past it the oldest connection without a
   * request under way is closed, or, if all have one, the new connection is answered 503 OVERLOADED.
   */
  maxConnections: option({ schema: z.number().int().min(1), default: 1_000, type: 'number', describe: 'open connections at most; past it the oldest idle or half-sent one is closed (else 503)' }),
  /** Node's headersTimeout and requestTimeout: a client slower than these gets 408 REQUEST_TIMEOUT (JSON). */
  headersTimeoutMs: option({ schema: z.number().int().positive(), default: 60_000, type: 'number', describe: 'time allowed to receive the request headers (→ 408)' }),
  requestTimeoutMs: option({ schema: z.number().int().positive(), default: 60_000, type: 'number', describe: 'time allowed to receive the whole request (→ 408); at least --headers-timeout-ms' }),
  logLevel: option({ schema: z.enum(LOG_LEVELS), default: 'info', type: 'string', describe: `pino log level: ${LOG_LEVELS.join(', ')}` }),
  /** On SIGTERM: how long in-flight requests may take before the process exits anyway. */
  shutdownTimeoutMs: option({ schema: z.number().int().min(0), default: 10_000, type: 'number', describe: 'grace period for in-flight requests on SIGTERM or SIGINT' }),
};

export type OptionKey = keyof typeof OPTIONS;
export const OPTION_KEYS = Object.keys(OPTIONS) as OptionKey[];

type Shape = { [K in OptionKey]: z.ZodDefault<(typeof OPTIONS)[K]['schema']> };
const shape = Object.fromEntries(
  OPTION_KEYS.map((key) => {
    const spec = OPTIONS[key] as OptionSpec;
    return [key, spec.schema.default(spec.default as never)];
  }),
) as Shape;

export const ServingConfigSchema = z.object(shape).refine((c) => c.headersTimeoutMs <= c.requestTimeoutMs, {
  path: ['headersTimeoutMs'],
  message: 'must not exceed --request-timeout-ms (Node refuses it)',
});
export type ServingConfig = z.infer<typeof ServingConfigSchema>;

/** The command-line flag of an option, without the dashes (e.g. `max-upload-bytes`). */
export function flagOf(key: OptionKey): string {
  return (OPTIONS[key] as OptionSpec).flag ?? kebabCase(key);
}

/** The environment variable of an option (e.g. `SERVING_MAX_UPLOAD_BYTES`). */
export function envOf(key: OptionKey): string {
  return `${ENV_PREFIX}_${flagOf(key).toUpperCase().replace(/-/g, '_')}`;
}

/** The default as --help and the README show it. */
export function defaultTextOf(key: OptionKey): string {
  const spec = OPTIONS[key] as OptionSpec;
  return spec.defaultText ?? String(typeof spec.default === 'function' ? (spec.default as () => unknown)() : spec.default);
}

/** The defaults, for tests and embedding; every field can be overridden. */
export function defaultConfig(overrides: Partial<ServingConfig> = {}): ServingConfig {
  return ServingConfigSchema.parse(overrides);
}

/**
 * Reads flags and SERVING_* environment variables (a flag wins over the environment), then
 * validates the whole with zod so a bad value stops the process with a readable message.
 */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ServingConfig {
  const flags = Object.fromEntries(OPTION_KEYS.map((key) => {
    const spec = OPTIONS[key] as OptionSpec;
    return [flagOf(key), {
      type: spec.type === 'list' ? 'string' : spec.type,
      ...(spec.type === 'list' ? { array: true } : {}),
      describe: `${spec.describe} [env ${envOf(key)}]`,
      // No yargs default: an absent flag stays undefined and zod applies the one default.
      defaultDescription: defaultTextOf(key),
    } as const];
  }));
  const args = yargs([...argv, ...envArgs(argv, env)])
    .scriptName('serving')
    .usage(`$0 [options]\n\nServes genre predictions over HTTP. Every option can also be set as ${ENV_PREFIX}_<OPTION> (e.g. ${envOf('port')}=8080); a flag wins over the variable.`)
    .options(flags)
    .strict()
    .help()
    .version(false)
    .parserConfiguration({ 'camel-case-expansion': false })
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new ConfigError(message);
    });
  const parsed = args.parseSync() as Record<string, unknown>;
  if (parsed['help']) throw new HelpRequested();
  const input: Record<string, unknown> = {};
  for (const key of OPTION_KEYS) {
    const value = parsed[flagOf(key)];
    if (value === undefined) continue;
    input[key] = (OPTIONS[key] as OptionSpec).type === 'list'
      ? (value as unknown[]).flatMap((v) => String(v).split(',')).map((v) => v.trim()).filter(Boolean)
      : value;
  }
  const result = ServingConfigSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `--${flagOf(i.path[0] as OptionKey)}: ${i.message}`).join('; '));
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

/**
 * SERVING_<FLAG> variables as extra flags, for the flags not given on the command line (so a flag
 * wins). Done by hand because yargs' .env() reads a copy of process.env taken when it was imported.
 */
function envArgs(argv: string[], env: NodeJS.ProcessEnv): string[] {
  const given = (flag: string) => argv.some((a) => a === `--${flag}` || a.startsWith(`--${flag}=`));
  const out: string[] = [];
  for (const key of OPTION_KEYS) {
    const value = env[envOf(key)];
    if (value === undefined || value === '' || given(flagOf(key))) continue;
    out.push(`--${flagOf(key)}`, value);
  }
  // The usual name of container platforms, when the SERVING_ one is not set.
  if (env['PORT'] && !env[envOf('port')] && !given('port')) out.push('--port', env['PORT']);
  return out;
}
