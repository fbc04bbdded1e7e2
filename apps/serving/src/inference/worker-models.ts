import type { ModalityOutput, ModelMetadata } from '@filmgenre/model-artifact';
import { ModelsDirError, posterSizeOf, type HostedModel, type ModelHost } from '@filmgenre/model-registry';
import type { BackendInfo, BackendRequest } from '@filmgenre/tf-runtime';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FusionModel, ImageModel, ServingModels, TextModel } from '../models.js';
import type { WorkerCall, WorkerMethod, WorkerReply, WorkerStart } from './protocol.js';

export interface WorkerModelsOptions {
  backend: BackendRequest;
  /** XNNPACK threads per model worker (wasm only). */
  threadsPerModel: number;
  /** Workers for each poster model, the costliest: batches of posters run on that many cores at once. */
  posterWorkers: number;
  /** A worker died outside a call (out of memory, a crash in native code): the process cannot serve. */
  onWorkerExit?: (key: string, error: Error) => void;
}

/**
 * The built app ships the worker as inference-worker.js beside main.js (see build.mjs). From source
 * (tsx, vitest) the .ts entry is imported through tsx's API: Node 20 does not apply `--import`
 * loaders given in a worker's execArgv.
 */
function createWorker(start: WorkerStart, name: string): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./inference-worker.js', import.meta.url), { workerData: start, name });
  }
  // The ESM build of tsx's API (require.resolve would give the CommonJS one).
  const tsxPackage = createRequire(import.meta.url).resolve('tsx/package.json');
  const exported = (JSON.parse(readFileSync(tsxPackage, 'utf8')) as { exports: Record<string, { import: { default: string } }> }).exports;
  const tsxApi = pathToFileURL(join(dirname(tsxPackage), exported['./esm/api']!.import.default)).href;
  const entry = new URL('./worker-entry.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then(({ tsImport }) => tsImport(${JSON.stringify(entry)}, ${JSON.stringify(entry)}))`;
  return new Worker(bootstrap, { eval: true, workerData: start, name });
}

/** One model behind one worker thread: request/response over postMessage, results transferred. */
class ModelWorker {
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private stopped = false;

  /** Calls sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  private constructor(readonly key: string, private readonly worker: Worker, readonly backend: BackendInfo, readonly encoders: string) {}

  static start(key: string, dir: string, options: WorkerModelsOptions): Promise<ModelWorker> {
    const start: WorkerStart = { key, dir, backend: options.backend, threads: options.threadsPerModel };
    const worker = createWorker(start, `model-${key}`);
    return new Promise<ModelWorker>((resolveStart, rejectStart) => {
      let started: ModelWorker | undefined;
      worker.on('message', (reply: WorkerReply) => {
        if ('type' in reply) {
          if (reply.type === 'ready') {
            started = new ModelWorker(key, worker, reply.backend, reply.encoders);
            resolveStart(started);
          } else {
            rejectStart(new ModelsDirError(`${key} model in ${dir} could not be loaded: ${reply.message}`));
          }
          return;
        }
        started?.settle(reply);
      });
      worker.on('error', (error) => {
        if (!started) rejectStart(new ModelsDirError(`${key} model worker failed while loading ${dir}: ${error.message}`));
        else started.fail(error);
      });
      worker.on('exit', (code) => {
        if (!started) {
          rejectStart(new ModelsDirError(`${key} model worker exited with code ${code} while loading ${dir}`));
          return;
        }
        if (!started.stopped) {
          const error = new Error(`${key} model worker exited unexpectedly with code ${code}`);
          started.fail(error);
          options.onWorkerExit?.(key, error);
        }
      });
    });
  }

  call<T>(method: WorkerMethod, input?: unknown): Promise<T> {
    if (this.stopped) return Promise.reject(new Error(`${this.key} model worker is stopped`));
    const id = this.nextId++;
    return new Promise<T>((resolveCall, rejectCall) => {
      this.pending.set(id, { resolve: resolveCall as (value: unknown) => void, reject: rejectCall });
      const call: WorkerCall = { id, method, ...(input === undefined ? {} : { input }) };
      this.worker.postMessage(call);
    });
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.fail(new Error(`${this.key} model worker is stopped`));
    void this.worker.terminate();
  }

  private settle(reply: Extract<WorkerReply, { id: number }>): void {
    const call = this.pending.get(reply.id);
    if (!call) return;
    this.pending.delete(reply.id);
    if (reply.ok) call.resolve(reply.result);
    else call.reject(new Error(reply.message));
  }

  private fail(error: Error): void {
    for (const call of this.pending.values()) call.reject(error);
    this.pending.clear();
  }
}

/**
 * Workers per overview model: the Predictor's lane of long overviews keeps one busy for up to a second
 * per text, while the usual overviews go to the idlest, the other one (measured: in one worker, a
 * normal request's overview waited 0.3–0.5 s behind the long text's encoder calls).
 */
const OVERVIEW_WORKERS = 2;

/**
 * model-registry's host for worker threads: each model loads (verifying its files) in its own worker
 * (a poster model in `posterWorkers` of them), in parallel, behind a proxy with the in-process
 * contract; the worker with the fewest calls in flight takes the next one.
 */
export function workerHost(options: WorkerModelsOptions): { host: ModelHost; runtime(): ServingModels['runtime']; tensorCounts(): Promise<Record<string, number>> } {
  if (!Number.isInteger(options.posterWorkers) || options.posterWorkers < 1) throw new RangeError(`posterWorkers must be an integer ≥ 1, got ${options.posterWorkers}`);
  const started: ModelWorker[] = [];
  const workersOf = (key: string) => started.filter((w) => w.key === key);
  const load = async (key: string, dir: string, metadata: ModelMetadata): Promise<HostedModel> => {
    const count = metadata.modality === 'image' ? options.posterWorkers : metadata.modality === 'text' ? OVERVIEW_WORKERS : 1;
    const settled = await Promise.allSettled(Array.from({ length: count }, () => ModelWorker.start(key, dir, options)));
    const workers = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      for (const w of workers) w.stop();
      throw failed.reason;
    }
    started.push(...workers);
    const idlest = () => workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    const common = { metadata, parallelism: workers.length, dispose: () => workers.forEach((w) => w.stop()) };
    if (metadata.modality === 'fusion') {
      const fusion: FusionModel = { ...common, members: Object.keys(metadata.members ?? {}), predict: (outputs) => idlest().call<Float32Array>('predict', outputs) };
      return fusion;
    }
    const calls = {
      predict: (inputs: unknown[]) => idlest().call<Float32Array>('predict', inputs),
      predictWithFeatures: (inputs: unknown[]) => idlest().call<ModalityOutput>('predictWithFeatures', inputs),
    };
    if (metadata.modality === 'text') return { ...common, ...calls } satisfies TextModel;
    const { width, height } = posterSizeOf(metadata, dir);
    return { ...common, ...calls, inputWidth: width, inputHeight: height } satisfies ImageModel;
  };
  return {
    host: { load, concurrent: true },
    runtime: () => {
      const first = started[0]!;
      return { inference: 'workers', backend: first.backend.name, threads: first.backend.threads, encoders: first.encoders };
    },
    tensorCounts: async () => {
      const counts = await Promise.all(started.map((w) => w.call<number>('numTensors')));
      // One entry per worker: the key, or key#1, key#2… for a poster model in several workers.
      return Object.fromEntries(started.map((w, i) => {
        const same = workersOf(w.key);
        return [same.length > 1 ? `${w.key}#${same.indexOf(w) + 1}` : w.key, counts[i]!];
      }));
    },
  };
}
