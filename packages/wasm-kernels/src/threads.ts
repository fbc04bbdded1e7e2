import * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';

/**
 * Makes `@tensorflow/tfjs-backend-wasm`'s threaded-SIMD build start in Node.
 *
 * Why it fails out of the box: tfjs hands emscripten a `blob:` URL for the pthread worker script
 * (Node's `worker_threads.Worker` only takes file paths → ERR_WORKER_PATH), and it passes the main
 * script to each worker as a Blob, which the stock worker can only load through `importScripts` of
 * a file path. The factory source in the Node bundle also refers to rollup's module-scope names
 * (`require$$0`, `commonjsGlobal`, ...) that do not exist in a fresh worker.
 *
 * The fix: a worker script on disk (below) that defines those names, reads the Blob asynchronously,
 * and otherwise follows the emscripten 3.1.x pthread worker protocol of the pinned tfjs 4.22.0
 * build. `URL.createObjectURL` is redirected to that file only while the backend initialises.
 */

// The worker protocol is tied to the emscripten version of this exact tfjs-backend-wasm release.
const SUPPORTED_WASM_BACKEND_VERSION = '4.22.0';

const WORKER_SOURCE = String.raw`'use strict';
// pthread worker for @tensorflow/tfjs-backend-wasm ${SUPPORTED_WASM_BACKEND_VERSION} threaded-SIMD build, in Node.
const nodeWorkerThreads = require('worker_threads');
const fs = require('fs');
const parentPort = nodeWorkerThreads.parentPort;
let Module = {};
// Names the factory source (extracted from the rollup bundle) expects at its module scope.
Object.assign(globalThis, {
  self: globalThis,
  require,
  Module,
  location: { href: __filename },
  __filename,
  __dirname,
  require$$0: fs,
  require$$1: require('path'),
  require$$3: require('perf_hooks'),
  require$$4: require('os'),
  commonjsGlobal: globalThis,
  _scriptDir: undefined,
  Worker: nodeWorkerThreads.Worker,
  importScripts(f) { (0, eval)(fs.readFileSync(f, 'utf8') + '//# sourceURL=' + f); },
  postMessage(msg) { parentPort.postMessage(msg); },
});
let initializedJS = false;
let pendingQueues = [];
function err(...args) { fs.writeSync(2, args.join(' ') + '\n'); }
Module.instantiateWasm = (info, receiveInstance) => {
  const instance = new WebAssembly.Instance(Module.wasmModule, info);
  receiveInstance(instance);
  Module.wasmModule = null;
  return instance.exports;
};
globalThis.startWorker = (instance) => { Module = instance; postMessage({ cmd: 'loaded' }); };
function startModule() { globalThis.WasmBackendModuleThreadedSimd(Module); }
function handle(data) {
  try {
    if (data.cmd === 'load') {
      Module.wasmModule = data.wasmModule;
      for (const handler of data.handlers) {
        Module[handler] = (...args) => postMessage({ cmd: 'callHandler', handler, args });
      }
      Module.wasmMemory = data.wasmMemory;
      Module.buffer = Module.wasmMemory.buffer;
      Module.ENVIRONMENT_IS_PTHREAD = true;
      if (typeof data.urlOrBlob === 'string') {
        importScripts(data.urlOrBlob);
        startModule();
      } else {
        // Node cannot importScripts a blob: URL; the main thread waits for 'loaded', so async is safe.
        data.urlOrBlob.text().then((src) => { (0, eval)(src); startModule(); }, (e) => { err(String(e)); throw e; });
      }
    } else if (data.cmd === 'run') {
      Module.__emscripten_thread_init(data.pthread_ptr, 0, 0, 1);
      Module.establishStackSpace();
      Module.PThread.receiveObjectTransfer(data);
      Module.PThread.threadInitTLS();
      if (!initializedJS) {
        pendingQueues.forEach((q) => Module.executeNotifiedProxyingQueue(q));
        pendingQueues = [];
        initializedJS = true;
      }
      try {
        Module.invokeEntryPoint(data.start_routine, data.arg);
      } catch (ex) {
        if (ex !== 'unwind') {
          if (ex instanceof Module.ExitStatus) {
            if (!Module.keepRuntimeAlive()) Module.__emscripten_thread_exit(ex.status);
          } else throw ex;
        }
      }
    } else if (data.cmd === 'cancel') {
      if (Module._pthread_self()) Module.__emscripten_thread_exit(-1);
    } else if (data.target === 'setimmediate') {
      // nothing to do
    } else if (data.cmd === 'processProxyingQueue') {
      if (initializedJS) Module.executeNotifiedProxyingQueue(data.queue);
      else pendingQueues.push(data.queue);
    } else if (data.cmd) {
      err('pthread worker received unknown command ' + data.cmd);
    }
  } catch (ex) {
    if (Module.__emscripten_thread_crashed) Module.__emscripten_thread_crashed();
    throw ex;
  }
}
globalThis.onmessage = (e) => handle(e.data);
parentPort.on('message', (data) => handle(data));
`;

let workerPath: string | undefined;

/** Writes the worker script once per content version to the temp dir (a bundled build has no sibling files). */
function ensureWorkerFile(): string {
  if (workerPath) return workerPath;
  const hash = createHash('sha256').update(WORKER_SOURCE).digest('hex').slice(0, 12);
  const dir = join(os.tmpdir(), 'filmgenre-wasm-kernels');
  const path = join(dir, `pthread-worker-${hash}.cjs`);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    const partial = `${path}.${process.pid}.tmp`;
    writeFileSync(partial, WORKER_SOURCE);
    renameSync(partial, path); // atomic: concurrent processes never see a half-written worker
  }
  workerPath = path;
  return path;
}

export const WASM_THREADS_ENV = 'FILMGENRE_WASM_THREADS';

export interface PrepareWasmOptions {
  /**
   * XNNPACK threads: > 1 uses the threaded-SIMD build, 1 the single-threaded SIMD build (unless `sharedMemory`).
   * Default: $FILMGENRE_WASM_THREADS, else the number of cores.
   */
  threads?: number;
  /**
   * Run the threaded-SIMD build on one thread too. Its memory is shared, so the native kernels
   * read and write tfjs's tensors in place instead of copying them (measured: 6–20 % faster
   * training steps on one thread); the cost is emscripten's pool of 8 idle workers, which is why
   * it is for training processes, not for serving's one-thread inference workers. Default false.
   */
  sharedMemory?: boolean;
}

export interface WasmThreadsState {
  /** Whether `prepareWasmBackend` enabled the threaded build for the next `tf.setBackend('wasm')`. */
  enabled: boolean;
  requestedThreads: number;
  /** Why threads are off, when they are. */
  reason?: string;
}

let restoreInitHooks: (() => void) | undefined;
let state: WasmThreadsState = { enabled: false, requestedThreads: 1, reason: 'prepareWasmBackend not called' };
let prepared = false;

/**
 * Call before `tf.setBackend('wasm')` (and after `setWasmPaths`). Enables the threaded-SIMD build
 * in Node when possible; otherwise leaves the single-threaded SIMD build in place and says why.
 * Call `finishWasmBackendInit()` once the backend is ready, to undo the temporary global hook.
 */
export async function prepareWasmBackend(options: PrepareWasmOptions = {}): Promise<WasmThreadsState> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const fromEnv = Number(process.env[WASM_THREADS_ENV]);
  const requested = Math.max(1, Math.floor(options.threads ?? (fromEnv > 0 ? fromEnv : os.availableParallelism())));
  const version = wasmBackendVersion();
  prepared = true;
  if (requested <= 1 && !options.sharedMemory) {
    state = { enabled: false, requestedThreads: 1, reason: 'one thread requested' };
  } else if (version !== SUPPORTED_WASM_BACKEND_VERSION) {
    state = {
      enabled: false,
      requestedThreads: requested,
      reason: `threads need @tensorflow/tfjs-backend-wasm ${SUPPORTED_WASM_BACKEND_VERSION}, found ${version}`,
    };
  } else if (typeof SharedArrayBuffer === 'undefined') {
    state = { enabled: false, requestedThreads: requested, reason: 'SharedArrayBuffer unavailable' };
  } else {
    let path: string | undefined;
    try {
      path = ensureWorkerFile();
    } catch (error) {
      state = { enabled: false, requestedThreads: requested, reason: `cannot write the worker script: ${(error as Error).message}` };
    }
    if (path) {
      installInitHooks(path, requested);
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
      wasm.setThreadsCount(requested);
      state = { enabled: true, requestedThreads: requested };
      return state;
    }
  }
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setThreadsCount(1);
  return state;
}

/**
 * Call once the wasm backend is ready: removes the temporary global hooks installed by
 * `prepareWasmBackend` and lets the process exit while XNNPACK's pool threads idle.
 */
export function finishWasmBackendInit(): void {
  restoreInitHooks?.();
  restoreInitHooks = undefined;
  // emscripten ref()s a worker while it runs a pthread, and XNNPACK's pool threads run for the
  // life of the module: without this, Node never exits on its own after training.
  const module = (tf.findBackend('wasm') as unknown as { wasm?: { PThread?: { runningWorkers: { unref(): void }[] } } } | null)
    ?.wasm;
  for (const worker of module?.PThread?.runningWorkers ?? []) worker.unref();
}

/** The thread count prepareWasmBackend was asked for, or undefined if it was not called. */
export function preparedWasmThreads(): number | undefined {
  return prepared ? state.requestedThreads : undefined;
}

export function wasmThreadsState(): WasmThreadsState {
  return { ...state };
}

function installInitHooks(path: string, threads: number): void {
  if (restoreInitHooks) return;
  const originalCreateObjectURL = URL.createObjectURL.bind(URL);
  // tfjs wraps only the pthread worker script in an 'application/javascript' Blob; emscripten then
  // creates every pool worker from the returned string, so it must be a file path in Node.
  URL.createObjectURL = (obj: Blob | MediaSource) =>
    obj instanceof Blob && obj.type === 'application/javascript' ? path : originalCreateObjectURL(obj as Blob);
  // The backend caps XNNPACK's pool at emscripten_num_logical_cores() / 2 (it assumes two hyperthreads
  // per core), read from os.cpus() in Node: on a 2-core machine that caps it at 1 thread.
  const originalCpus = os.cpus;
  const cpus = originalCpus();
  os.cpus = () => Array.from({ length: Math.max(cpus.length, 2 * threads) }, (_, i) => cpus[i % cpus.length]!);
  restoreInitHooks = () => {
    URL.createObjectURL = originalCreateObjectURL;
    os.cpus = originalCpus;
  };
}

function wasmBackendVersion(): string {
  const require = createRequire(import.meta.url);
  const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  return (require(join(wasmDir, '..', 'package.json')) as { version: string }).version;
}
