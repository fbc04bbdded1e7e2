import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { dirname } from 'node:path';

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
export type BackendRequest = BackendName | 'auto';
export const BACKEND_ENV = 'FILMGENRE_BACKEND';

export interface BackendInfo {
  name: BackendName;
  /** Why this one: requested explicitly, or the first of tensorflow → wasm → cpu that loaded. */
  reason: string;
  /** Backends tried before and why they were passed over. */
  skipped: { name: BackendName; error: string }[];
  tfjsVersion: string;
  threads: number;
}

export interface InitBackendOptions {
  /** Called once per backend that loads, before it is used: e.g. to register extra kernels. */
  onBackendReady?: (name: BackendName) => void | Promise<void>;
  log?: (line: string) => void;
  /** XNNPACK threads for `wasm` (default: $FILMGENRE_WASM_THREADS, else one per core). */
  wasmThreads?: number;
  /** `wasm` on one thread: run its threaded build anyway, so native kernels share its memory (training; see prepareWasmBackend). */
  wasmSharedMemory?: boolean;
}

const require = createRequire(import.meta.url);
let active: BackendInfo | undefined;

/** The backend initBackend started last, if any: its threads are the process's per-model thread budget. */
export function activeBackend(): BackendInfo | undefined {
  return active;
}

async function loadBackend(name: BackendName, options: InitBackendOptions): Promise<number> {
  if (name === 'tensorflow') {
    // Registers the native 'tensorflow' backend on the shared @tensorflow/tfjs-core instance.
    await import('@tensorflow/tfjs-node' as string);
  } else if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // Point emscripten at the .wasm files on disk; in Node it reads them with fs, no network involved.
    const distDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    wasm.setWasmPaths(`${distDir}/`);
    // Threaded-SIMD build on all cores ($FILMGENRE_WASM_THREADS overrides), falling back to 1 thread.
    await (await import('@filmgenre/wasm-kernels')).prepareWasmBackend({
      ...(options.wasmThreads === undefined ? {} : { threads: options.wasmThreads }),
      sharedMemory: options.wasmSharedMemory ?? false,
    });
  }
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') returned false`);
  await tf.ready();
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const kernels = await import('@filmgenre/wasm-kernels');
    kernels.finishWasmBackendInit();
    // Training gradients wasm lacks (Conv2DBackpropFilter, UnsortedSegmentSum) or runs slowly.
    kernels.registerWasmTrainingKernels();
    return wasm.getThreadsCount();
  }
  return 1;
}

/**
 * Picks the TensorFlow.js backend: `tensorflow` (tfjs-node) if it loads, else `wasm`, else `cpu`.
 * An explicit request (argument or $FILMGENRE_BACKEND) is honoured or fails loudly.
 */
export async function initBackend(request?: BackendRequest, options: InitBackendOptions = {}): Promise<BackendInfo> {
  const log = options.log ?? ((line: string) => console.error(line));
  const requested = (request && request !== 'auto' ? request : (process.env[BACKEND_ENV] as BackendRequest | undefined)) ?? 'auto';
  if (requested !== 'auto' && !BACKENDS.includes(requested)) {
    throw new Error(`unknown backend '${requested}' (from ${request ? '--backend' : BACKEND_ENV}); use one of auto, ${BACKENDS.join(', ')}`);
  }
  const order: BackendName[] = requested === 'auto' ? [...BACKENDS] : [requested];
  const skipped: BackendInfo['skipped'] = [];
  for (const name of order) {
    try {
      const threads = await loadBackend(name, options);
      await options.onBackendReady?.(name);
      const info: BackendInfo = {
        name,
        reason: requested === 'auto' ? 'first of tensorflow → wasm → cpu that loaded' : 'requested',
        skipped,
        tfjsVersion: tf.version.tfjs,
        threads,
      };
      active = info;
      log(`[tfjs] backend: ${name} (${info.reason}${skipped.length ? `; skipped ${skipped.map((s) => s.name).join(', ')}` : ''})`);
      return info;
    } catch (error) {
      const message = (error as Error).message.split('\n')[0]!;
      if (requested !== 'auto') throw new Error(`backend '${name}' could not start: ${message}`);
      skipped.push({ name, error: message });
    }
  }
  throw new Error(`no TensorFlow.js backend could start: ${skipped.map((s) => `${s.name}: ${s.error}`).join('; ')}`);
}

/** The --backend option every command takes, declared once (left at auto, $FILMGENRE_BACKEND decides). */
export const BackendOptionSchema = z.enum(['auto', ...BACKENDS]).default('auto')
  .describe(`TensorFlow.js backend: tensorflow if tfjs-node loads, else wasm, else cpu ($${BACKEND_ENV} when auto)`);
