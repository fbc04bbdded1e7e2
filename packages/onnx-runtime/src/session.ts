import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import type { OnnxElementType, OnnxTensorData } from './graph.js';

/**
 * Where a frozen encoder runs: `onnxruntime` (onnxruntime-node's CPU build, native, the fastest that
 * installs here), `tfjs` (the TensorFlow.js backend in use), or `auto`: onnxruntime where it loads,
 * else tfjs. $FILMGENRE_ENCODER_RUNTIME sets it for every encoder of a process.
 */
export const ENCODER_RUNTIMES = ['auto', 'onnxruntime', 'tfjs'] as const;
export type EncoderRuntimeRequest = (typeof ENCODER_RUNTIMES)[number];
export type EncoderRuntime = Exclude<EncoderRuntimeRequest, 'auto'>;
export const ENCODER_RUNTIME_ENV = 'FILMGENRE_ENCODER_RUNTIME';

type OrtModule = typeof Ort;
let loaded: { ort: OrtModule } | { error: string } | undefined;

/** onnxruntime-node, loaded once; undefined (with the reason in `onnxRuntimeUnavailable`) where it does not load. */
function loadOrt(): OrtModule | undefined {
  if (!loaded) {
    try {
      // CommonJS package with a native addon: require keeps it out of bundles' static graphs.
      loaded = { ort: createRequire(import.meta.url)('onnxruntime-node') as OrtModule };
    } catch (error) {
      loaded = { error: (error as Error).message.split('\n')[0]! };
    }
  }
  return 'ort' in loaded ? loaded.ort : undefined;
}

/** Why onnxruntime-node cannot be used here, or undefined when it loads. */
export function onnxRuntimeUnavailable(): string | undefined {
  loadOrt();
  return loaded && 'error' in loaded ? loaded.error : undefined;
}

/** onnxruntime-node's version, when it loads. */
export function onnxRuntimeVersion(): string | undefined {
  return loadOrt()?.env.versions.node;
}

/**
 * The runtime an encoder will use for `request` (default: $FILMGENRE_ENCODER_RUNTIME, else auto).
 * An explicit `onnxruntime` where it does not load is an error that says why.
 */
export function resolveEncoderRuntime(request?: EncoderRuntimeRequest): EncoderRuntime {
  const fromEnv = process.env[ENCODER_RUNTIME_ENV];
  const wanted = request ?? ((fromEnv || 'auto') as EncoderRuntimeRequest);
  if (!ENCODER_RUNTIMES.includes(wanted)) {
    throw new Error(`${ENCODER_RUNTIME_ENV}=${fromEnv}: use one of ${ENCODER_RUNTIMES.join(', ')}`);
  }
  if (wanted === 'tfjs') return 'tfjs';
  const unavailable = onnxRuntimeUnavailable();
  if (unavailable === undefined) return 'onnxruntime';
  if (wanted === 'onnxruntime') throw new Error(`onnxruntime was asked for but onnxruntime-node does not load: ${unavailable}`);
  return 'tfjs';
}

/** How runs, reports and metadata name the runtime that computes an encoder's features: `onnxruntime <version>`, or `tfjs <its backend>`. */
export function encoderRuntimeLabel(runtime: EncoderRuntime, tfjsBackend?: string): string {
  return runtime === 'onnxruntime' ? `onnxruntime ${onnxRuntimeVersion()}` : `tfjs ${tfjsBackend}`;
}

export interface OnnxFeed {
  type: OnnxElementType;
  data: OnnxTensorData;
  dims: readonly number[];
}

export interface OnnxResult {
  data: Float32Array;
  dims: readonly number[];
}

export interface OnnxSessionOptions {
  /** Threads of the session's operator thread pool (default 1). */
  threads?: number;
}

/**
 * An ONNX model on onnxruntime-node's CPU provider, with every graph optimisation on (constant
 * folding, Conv + activation fusion, memory planning) and no spinning threads. `run` computes on
 * the calling thread: a server runs sessions in worker threads.
 */
export class OnnxSession {
  private released = false;

  private constructor(private readonly session: Ort.InferenceSession, private readonly ort: OrtModule, readonly threads: number) {}

  static async create(model: Uint8Array, options: OnnxSessionOptions = {}): Promise<OnnxSession> {
    const ort = loadOrt();
    if (!ort) throw new Error(`onnxruntime-node does not load: ${onnxRuntimeUnavailable()}`);
    const threads = options.threads ?? 1;
    if (!(Number.isInteger(threads) && threads >= 1)) throw new RangeError(`threads must be a positive integer, got ${threads}`);
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      // Idle pool threads sleep instead of spinning: on 2 shared cores a spinning thread takes the CPU
      // the poster decoder (or another model's worker) needs; spinning cost 4-6 CPU-ms per poster in
      // the trainer's feature pass and made it 1.3-2x slower on 2 threads (docs/benchmarks/poster-trunk.md).
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    return new OnnxSession(session, ort, threads);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs the model; every output is float32. */
  async run(feeds: Record<string, OnnxFeed>): Promise<Record<string, OnnxResult>> {
    if (this.released) throw new Error('OnnxSession has been released');
    const tensors: Record<string, Ort.Tensor> = {};
    for (const [name, feed] of Object.entries(feeds)) tensors[name] = new this.ort.Tensor(feed.type, feed.data, feed.dims);
    const results = await this.session.run(tensors);
    const out: Record<string, OnnxResult> = {};
    for (const [name, tensor] of Object.entries(results)) {
      if (tensor.type !== 'float32') throw new Error(`ONNX output '${name}' is ${tensor.type}, expected float32`);
      out[name] = { data: tensor.data as Float32Array, dims: tensor.dims };
    }
    return out;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}
