import { readCommandLine } from '@filmgenre/core';
import { BACKENDS } from '@filmgenre/tf-runtime';
import { availableParallelism } from 'node:os';
import { levels, type LevelWithSilent } from 'pino';
import { z } from 'zod';

export const ENV_PREFIX = 'SERVING';

export const INFERENCE_MODES = ['workers', 'inline'] as const;
export type Inference = (typeof INFERENCE_MODES)[number];

/** pino's own level names, plus 'silent'. */
const LOG_LEVELS = [...Object.keys(levels.values), 'silent'] as unknown as [LevelWithSilent, ...LevelWithSilent[]];

/**
 * Every option of the app, once: its validation, its default, its help line. The flags, the
 * SERVING_* environment variables and --help derive from it (core's cliOptionsOf), and a test checks
 * the README's options table against it.
 */
export const ServingConfigSchema = z.object({
  modelsDir: z.string().min(1).default('models').describe('directory holding the models to serve, one sub-directory each (e.g. cnn/, sentence/, fusion/)'),
  /**
   * A fusion fitted on a member since retrained alone: `serve-members` serves every other model and
   * names the fusion unavailable (with the reason) in /v1/models, /readyz and the log; `refuse` exits.
   */
  staleFusion: z.enum(['serve-members', 'refuse']).default('serve-members').describe('a fusion fitted on other members than those present: serve-members (and report it unavailable) or refuse to start'),
  host: z.string().min(1).default('127.0.0.1').describe('address to listen on (0.0.0.0 for all interfaces)'),
  port: z.int().min(0).max(65_535).default(3000).describe('port to listen on (0 = any free port)'),
  /** Largest poster upload accepted, in bytes (a larger one gets 413). */
  maxUploadBytes: z.int().positive().default(10 * 1024 * 1024).describe('largest poster upload in bytes'),
  /**
   * Request bodies buffered at once, in bytes, over all predict requests: each reserves its
   * Content-Length before it is read; one that does not fit gets 503 OVERLOADED with Retry-After.
   */
  maxBufferedUploadBytes: z.int().positive().default(64 * 1024 * 1024).describe('request bodies buffered at once, in bytes, over all predict requests (more → 503)'),
  maxOverviewChars: z.int().positive().default(10_000).describe('longest overview in characters'),
  /**
   * Largest poster in pixels (width × height read from the header before decoding). Decoding a
   * 30,000 × 30,000 PNG of a few kB would need 2.7 GB of RGB: such files are refused up front.
   */
  maxInputPixels: z.int().positive().default(25_000_000).describe('largest poster in pixels (width × height), read from the header before decoding'),
  /** Longest side of a poster, read from the header before decoding. */
  maxInputSide: z.int().positive().default(10_000).describe('longest poster side in pixels, read from the header before decoding'),
  /**
   * Longest side over shortest side. A 97 KB PNG of 1 × 25,000,000 pixels (within the pixel limit)
   * took 7–9 s to decode here; within a ratio of 10 the worst measured decode was ≈ 1 s.
   */
  maxAspectRatio: z.number().min(1).default(10).describe('largest ratio of the longer poster side to the shorter one, read from the header'),
  /**
   * Scans of a JPEG, counted from its markers before decoding: decode time grows with them (a 654 KB
   * 1400 × 1400 JPEG of 50,000 scans took 35 s; 1,000 scans 0.4 s). Encoders write about 10.
   */
  maxJpegScans: z.int().min(1).default(100).describe('most scans accepted in a JPEG poster, counted before decoding'),
  /**
   * Frames of a GIF, counted from its blocks before its header is read: libvips's header read walks
   * every frame (a 10 MB GIF of 700,000 frames: 884 ms of CPU); posters use only the first.
   */
  maxGifFrames: z.int().min(1).default(1_000).describe('most frames accepted in a GIF poster, counted before its header is read'),
  /** A poster's decode is answered with POSTER_DECODE_TIMEOUT when it takes longer than this. */
  decodeTimeoutMs: z.int().positive().default(3_000).describe('deadline of one poster decode (and of its wait for the large-poster decoder)'),
  /**
   * Posters whose decode work is over this many pixels (a JPEG's scans add to it; GIF, TIFF and AVIF
   * always count as over) are decoded one at a time, in a process at a lower CPU priority, so that
   * the usual posters never wait behind them.
   */
  largePosterPixels: z.int().min(0).default(2_000_000).describe('posters of more decode work than this many pixels (a JPEG\'s scans add to it) are decoded one at a time'),
  /**
   * Posters of at most this much decode work (in pixels of a baseline JPEG; the dataset's posters are
   * 45,000) are decoded in the server process, sparing them the pool's IPC round trip; the costliest
   * files at this limit take a few ms of CPU (poster-decoder.test.ts).
   */
  inProcessDecodePixels: z.int().min(0).default(250_000).describe('posters of at most this much decode work (pixels) are decoded in the server process; more goes to the decoder processes'),
  /**
   * Processes decoding the posters between --in-process-decode-pixels and --large-poster-pixels of
   * work, each killed at a decode's deadline and replaced, so that no poster holds a decoder past it.
   * 0 decodes them in the server process instead (a decode past its deadline then runs on in libvips).
   */
  decodeProcesses: z.int().min(0).max(64).default(() => availableParallelism()).meta({ description: 'processes decoding posters of more work than --in-process-decode-pixels, killed at the deadline (0: in the server process, not stoppable)', defaultText: 'one per core' }),
  /**
   * Load shedding: a predict request whose models would start later than this, behind the work
   * already queued (estimated from the queue and the measured time per item), gets 503 OVERLOADED
   * with Retry-After instead of waiting.
   */
  queueDeadlineMs: z.int().positive().default(2_000).describe('longest estimated wait for the models; a request over it gets 503 OVERLOADED + Retry-After'),
  /** How long the first request of a micro-batch waits for others before the model runs. */
  batchWindowMs: z.number().min(0).max(1_000).default(2).describe('micro-batch window in milliseconds'),
  maxBatch: z.int().min(1).max(1_024).default(32).describe('largest micro-batch per model call'),
  /**
   * Under load, how long a micro-batch may keep waiting past its window for requests that are
   * already being parsed and decoded (never when none are, so a lone request never waits for it).
   */
  batchMaxWaitMs: z.number().min(0).max(10_000).default(50).describe('longest wait of a micro-batch for requests still being decoded'),
  /** Origins allowed to call the API from a browser; empty means no CORS headers at all. */
  corsOrigins: z.array(z.string().min(1)).default(() => []).meta({ description: 'origin allowed by CORS (* for any); none = CORS off', flag: 'cors-origin', defaultText: 'none' }),
  backend: z.enum(['auto', ...BACKENDS]).default('auto').describe(`TensorFlow.js backend: auto, ${BACKENDS.join(', ')}`),
  /**
   * `workers`: each model in its own worker thread, so models and request handling run on different
   * cores at once; `inline`: everything on the main thread (one tfjs instance, less memory).
   */
  inference: z.enum(INFERENCE_MODES).default('workers').describe('where models run: workers (one worker thread per model) or inline (main thread)'),
  /**
   * XNNPACK threads per model (wasm). 1 by default: with a worker per model the cores are already
   * shared between models, and XNNPACK's spinning threads then get in each other's way. Measured on
   * 2 cores, one poster worker with 2 threads instead of two with 1: c=1 p99 126–174 vs 76–92 ms,
   * c=32 28–41 vs 36–45 req/s (docs/benchmarks/serving.md).
   */
  modelThreads: z.int().min(1).max(64).default(1).describe('XNNPACK threads per model (wasm backend)'),
  /**
   * Worker threads for the poster model (inference `workers`), which costs ~5× the others per film:
   * several batches of posters run at once, one per core. Default: one per core.
   */
  posterWorkers: z.int().min(1).max(64).default(() => availableParallelism()).meta({ description: 'worker threads for each poster model', defaultText: 'one per core' }),
  /**
   * Largest batch of posters per CNN call (the other models use maxBatch). The MobileNetV2 trunk is
   * compute-bound: larger batches hardly lower its cost per poster, they only make each call, and
   * so the wait of the requests behind it, longer; with one batch per poster worker, 8 keeps both busy.
   */
  maxPosterBatch: z.int().min(1).max(1_024).default(8).describe('largest micro-batch per poster-model call'),
  /** Node's maxHeaderSize: request line + headers; more is answered 431 HEADERS_TOO_LARGE (JSON). */
  maxHeaderBytes: z.int().min(1_024).max(1_048_576).default(16_384).describe('largest request line + headers in bytes (more → 431)'),
  /**
   * Open connections at most (each holds a file descriptor). Past it the oldest connection without a
   * request under way is closed, or, if all have one, the new connection is answered 503 OVERLOADED.
   */
  maxConnections: z.int().min(1).default(1_000).describe('open connections at most; past it the oldest idle or half-sent one is closed (else 503)'),
  /** Node's headersTimeout and requestTimeout: a client slower than these gets 408 REQUEST_TIMEOUT (JSON). */
  headersTimeoutMs: z.int().positive().default(60_000).describe('time allowed to receive the request headers (→ 408)'),
  requestTimeoutMs: z.int().positive().default(60_000).describe('time allowed to receive the whole request (→ 408); at least --headers-timeout-ms'),
  logLevel: z.enum(LOG_LEVELS).default('info').describe(`pino log level: ${LOG_LEVELS.join(', ')}`),
  /** On SIGTERM: how long in-flight requests may take before the process exits anyway. */
  shutdownTimeoutMs: z.int().min(0).default(10_000).describe('grace period for in-flight requests on SIGTERM or SIGINT'),
}).refine((c) => c.headersTimeoutMs <= c.requestTimeoutMs, {
  path: ['headersTimeoutMs'],
  message: 'must not exceed --request-timeout-ms (Node refuses it)',
});
export type ServingConfig = z.infer<typeof ServingConfigSchema>;

/** The defaults, for tests and embedding; every field can be overridden. */
export function defaultConfig(overrides: Partial<ServingConfig> = {}): ServingConfig {
  return ServingConfigSchema.parse(overrides);
}

export const USAGE = `serving [options]

Serves genre predictions over HTTP. Every option can also be set as ${ENV_PREFIX}_<OPTION> (e.g. ${ENV_PREFIX}_PORT=8080); a flag wins over the variable.`;

/**
 * Reads flags and SERVING_* environment variables (a flag wins over the environment; PORT, the name
 * container platforms set, stands in for SERVING_PORT), then validates the whole with zod: a bad
 * value or --help throws core's CommandLineError.
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ServingConfig {
  return readCommandLine(ServingConfigSchema, USAGE, argv, { envPrefix: ENV_PREFIX, env: { [`${ENV_PREFIX}_PORT`]: env['PORT'], ...env } });
}
