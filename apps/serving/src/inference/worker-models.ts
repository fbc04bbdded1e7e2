import type { ModalityOutput } from '@filmgenre/model-artifact';
import type { BackendInfo, BackendRequest } from '@filmgenre/tf-runtime';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { inspectModelsDir, ModelsDirError, posterSizeFromMetadata, type FusionModel, type ImageModel, type MemberModel, type ServingModels, type TextModel } from '../models.js';
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
 * Loads every model of the directory in its own worker thread (in parallel; each poster model in
 * `posterWorkers` of them) and returns proxies with the same interface as the in-process models. On
 * any failure, the workers already started stop.
 */
export async function loadModelsInWorkers(dir: string, options: WorkerModelsOptions): Promise<ServingModels> {
  const root = resolve(dir);
  const plan = inspectModelsDir(root);
  if (!Number.isInteger(options.posterWorkers) || options.posterWorkers < 1) throw new RangeError(`posterWorkers must be an integer ≥ 1, got ${options.posterWorkers}`);
  const keys = [
    ...Object.entries(plan.members).flatMap(([key, m]) => Array<string>(m.modality === 'image' ? options.posterWorkers : OVERVIEW_WORKERS).fill(key)),
    ...(plan.fusion ? [plan.fusion.name] : []),
  ];
  const settled = await Promise.allSettled(keys.map((key) => ModelWorker.start(key, join(root, key), options)));
  const started = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    for (const w of started) w.stop();
    throw failed.reason;
  }
  const workersOf = (key: string) => started.filter((w) => w.key === key);

  const members: Record<string, MemberModel> = {};
  for (const [key, metadata] of Object.entries(plan.members)) {
    const workers = workersOf(key);
    // The worker with the fewest calls in flight (the micro-batcher runs at most one per worker).
    const idlest = () => workers.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    // The workers verified every file against this metadata (its recorded sha256s) before loading.
    const common = { metadata, dispose: () => workers.forEach((w) => w.stop()) };
    if (metadata.modality === 'image') {
      const { width, height } = posterSizeFromMetadata(metadata, join(root, key));
      const model: ImageModel = {
        ...common,
        inputWidth: width,
        inputHeight: height,
        parallelism: workers.length,
        predict: (posters) => idlest().call<Float32Array>('predict', posters),
        predictWithFeatures: (posters) => idlest().call<ModalityOutput>('predictWithFeatures', posters),
      };
      members[key] = { modality: 'image', model };
    } else {
      const model: TextModel = {
        ...common,
        parallelism: workers.length,
        predict: (overviews) => idlest().call<Float32Array>('predict', overviews),
        predictWithFeatures: (overviews) => idlest().call<ModalityOutput>('predictWithFeatures', overviews),
      };
      members[key] = { modality: 'text', model };
    }
  }
  const fusionWorker = plan.fusion ? workersOf(plan.fusion.name)[0] : undefined;
  let fusion: FusionModel | undefined;
  if (plan.fusion && fusionWorker) {
    const metadata = plan.fusion;
    fusion = {
      metadata,
      members: Object.keys(metadata.members ?? {}),
      predict: (outputs) => fusionWorker.call<Float32Array>('predict', outputs),
      dispose: () => fusionWorker.stop(),
    };
  }
  const first = started[0]!;
  return {
    dir: root,
    members,
    ...(fusion ? { fusion } : {}),
    runtime: { inference: 'workers', backend: first.backend.name, threads: first.backend.threads, encoders: first.encoders },
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
