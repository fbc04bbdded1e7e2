import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import { threadId, Worker } from 'node:worker_threads';
import { preparedWasmThreads, WASM_THREADS_ENV } from '../threads.js';
import { buildNativeModule, NativeBuildError, SIMD_VARIANTS, type NativeBuild, type SimdVariant } from './build.js';

/**
 * Runtime of the project's own WebAssembly module (`csrc/`): one shared WebAssembly.Memory, one
 * instance of the module on the calling thread and one per worker thread, all on that memory.
 *
 * Kernels are synchronous (tfjs kernels and custom gradients are): the caller lays out its buffers
 * in the memory, hands one job to each worker through a small shared control block, runs its own
 * job, then blocks (Atomics.wait) until the workers are done. A job is one exported C function
 * with integer (pointer) arguments; each worker records what it ran, so tests can check the split.
 */

/** Set to 0 to disable the module (every caller falls back to its tfjs path). */
export const NATIVE_KERNELS_ENV = 'FILMGENRE_NATIVE_KERNELS';

/**
 * Set to 0 to keep the module on its own memory even where it could run on tfjs-backend-wasm's
 * (see HostHeap).
 */
export const SHARED_HEAP_ENV = 'FILMGENRE_NATIVE_SHARED_HEAP';

/**
 * Another module's memory the native module can run on instead of its own: tfjs-backend-wasm's
 * heap in its threaded build (a shared memory). Tensors are then read and written where tfjs keeps
 * them, with no copy in or out; scratch buffers and the threads' stacks come from tfjs's malloc.
 * The module has no data segments, so instantiating it writes nothing into that memory.
 */
export interface HostHeap {
  memory: WebAssembly.Memory;
  malloc(bytes: number): number;
  free(ptr: number): void;
}

/** Which build to load: auto (default: relaxed where it builds and runs), relaxed, or simd128. */
export const WASM_SIMD_ENV = 'FILMGENRE_WASM_SIMD';
export type SimdChoice = 'auto' | SimdVariant;

// (module (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd))
const RELAXED_SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, 0x03, 0x02,
  0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b,
]);

/**
 * Whether this runtime runs relaxed SIMD. Node 20's V8 has it (standard since WebAssembly 3.0)
 * behind --experimental-wasm-relaxed-simd, which this turns on (process-wide, for modules compiled
 * afterwards); Node ≥ 22 ships it on.
 */
let relaxedSupported: boolean | undefined;

export function relaxedSimdSupported(): boolean {
  if (relaxedSupported === undefined) {
    if (!WebAssembly.validate(RELAXED_SIMD_PROBE)) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    relaxedSupported = WebAssembly.validate(RELAXED_SIMD_PROBE);
  }
  return relaxedSupported;
}

const PAGE_BYTES = 65536;
const MAX_PAGES = 65536; // 4 GiB, the --max-memory the module is linked with
const WORKER_STACK_BYTES = 256 * 1024;
const ALIGN = 64;

// Control block of one worker (Int32 slots).
const SEQ = 0; // job counter, written by the caller
const DONE = 1; // last finished job, written by the worker
const READY = 2;
const FN = 3;
const NARGS = 4;
const ERROR = 5;
const WORKER_THREAD_ID = 6;
const JOBS_RUN = 7;
const RAN_FN = 8; // what the worker actually ran: function index and arguments, copied by the worker
const RAN_ARGS = 9;
const ARGS = 32;
const MAX_ARGS = 16;
const MESSAGE = 64;
const MESSAGE_LEN = 256;
const RUN_LOG_LENGTH = 32;
const CONTROL_SLOTS = MESSAGE + MESSAGE_LEN;

const WORKER_SOURCE = String.raw`'use strict';
const { workerData, threadId } = require('node:worker_threads');
const { module, memory, control, stackTop, names } = workerData;
const ctl = new Int32Array(control);
const fail = (e) => {
  const text = String((e && e.stack) || e);
  for (let i = 0; i < ${MESSAGE_LEN}; i++) ctl[${MESSAGE} + i] = i < text.length ? text.charCodeAt(i) : 0;
  Atomics.store(ctl, ${ERROR}, 1);
};
let fns = [];
try {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  instance.exports.set_stack_pointer(stackTop);
  fns = names.map((n) => instance.exports[n]);
  Atomics.store(ctl, ${WORKER_THREAD_ID}, threadId);
} catch (e) {
  fail(e);
}
Atomics.store(ctl, ${READY}, 1);
Atomics.notify(ctl, ${READY});
let seen = 0;
for (;;) {
  Atomics.wait(ctl, ${SEQ}, seen);
  const seq = Atomics.load(ctl, ${SEQ});
  if (seq === seen) continue;
  seen = seq;
  const fn = ctl[${FN}];
  if (fn < 0) break;
  const n = ctl[${NARGS}];
  const args = [];
  for (let i = 0; i < n; i++) args.push(ctl[${ARGS} + i]);
  try {
    fns[fn](...args);
    ctl[${RAN_FN}] = fn;
    for (let i = 0; i < n; i++) ctl[${RAN_ARGS} + i] = args[i];
    ctl[${JOBS_RUN}]++;
  } catch (e) {
    fail(e);
  }
  Atomics.store(ctl, ${DONE}, seq);
  Atomics.notify(ctl, ${DONE});
}
`;

/**
 * Contiguous ranges [begin, end) covering `items`, one per thread (never more ranges than items):
 * how every kernel splits its work into one job per thread.
 */
function splitRanges(items: number, threads: number): Array<[number, number]> {
  const n = Math.max(1, Math.min(threads, items));
  return Array.from({ length: n }, (_, t) => [Math.round((items * t) / n), Math.round((items * (t + 1)) / n)]);
}

/**
 * Element-wise and reduction kernels (Adam, max-pool gradient, column sums) run on the module from
 * this many floats on: below it a JavaScript loop costs less than the copies in and out and waking
 * the threads.
 */
export const NATIVE_MIN_FLOATS = 1 << 16;

/** Exported C functions callable as jobs (integer arguments only). */
export const JOB_FUNCTIONS = ['gemm_f32', 'lstm_forward_dir', 'lstm_backward_dir', 'lstm_input_grad', 'conv2d_filter_grad', 'conv2d_forward', 'winograd_forward', 'winograd_filter_grad', 'adam_update', 'max_pool_grad_2x2', 'column_sums'] as const;
export type JobFunction = (typeof JOB_FUNCTIONS)[number];

export interface Job {
  fn: JobFunction;
  args: number[];
  /** What the job computes, for the run log (e.g. 'forward pass, direction 1'). */
  label?: string;
}

/** Who ran a job: the thread id (worker_threads.threadId; 0 is the main thread) as it reported itself. */
export interface JobRecord extends Job {
  threadId: number;
  /** 0 for the calling thread, 1… for the workers. */
  thread: number;
}

interface WorkerHandle {
  worker: Worker;
  ctl: Int32Array;
  seq: number;
}

export interface NativeKernelsStatus {
  available: boolean;
  /** Threads the kernels use (the calling thread included). */
  threads: number;
  /** Why the module is unavailable, when it is. */
  reason?: string;
  modulePath?: string;
  /** Whether the module was compiled by this process (the toolchain ran at first use). */
  compiledNow?: boolean;
  /** Which build runs: relaxed (fused multiply-add in the GEMM) or simd128. */
  simd?: SimdVariant;
  /** Why the relaxed build does not run, when auto chose simd128. */
  simdNote?: string;
  /** Whether the module runs on tfjs-backend-wasm's heap (HostHeap), so kernels copy nothing. */
  sharedHeap?: boolean;
  /** Why it does not, when it tried. */
  sharedHeapNote?: string;
}

export class NativeRuntime {
  readonly threads: number;
  readonly simd: SimdVariant;
  readonly modulePath: string;
  readonly compiledNow: boolean;
  private readonly memory: WebAssembly.Memory;
  private readonly fns: Record<string, (...args: number[]) => number>;
  private readonly workers: WorkerHandle[] = [];
  private readonly dataBase: number;
  private top: number;
  private view: Float32Array;
  private readonly log: JobRecord[][] = [];
  private readonly host: HostHeap | null;
  /** On a host heap: the blocks of its malloc this runtime holds until the next reset. */
  private hostBlocks: number[] = [];
  /** Floats copied in (put) and out (read) since start: what running on the host heap saves. */
  copiedFloats = 0;

  constructor(threads: number, build: NativeBuild = buildNativeModule(), host: HostHeap | null = null) {
    this.simd = build.variant;
    this.modulePath = build.path;
    this.compiledNow = build.compiled;
    const module = new WebAssembly.Module(readFileSync(build.path));
    const moduleImport = WebAssembly.Module.imports(module).find((i) => i.kind === 'memory');
    if (!moduleImport) throw new Error('native module does not import its memory');
    this.host = host;
    this.memory = host ? host.memory : new WebAssembly.Memory({ initial: 64, maximum: MAX_PAGES, shared: true });
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    const exports = instance.exports as Record<string, unknown>;
    const heapBase = (exports.__heap_base as WebAssembly.Global).value as number;
    this.fns = Object.fromEntries(
      Object.entries(exports).filter(([, v]) => typeof v === 'function') as [string, (...args: number[]) => number][],
    );
    for (const n of JOB_FUNCTIONS) if (typeof this.fns[n] !== 'function') throw new Error(`native module lacks ${n}`);
    // Each thread's stack: on its own memory, past the module's static region (tensors go after
    // them); on a host heap, blocks of the host's malloc, the calling thread's too (the linker's
    // initial stack pointer would point into the host's own data). Kept for the process's life: a
    // terminated worker may still be unwinding on its stack.
    const stackTop = (i: number): number => {
      if (!host) return align(heapBase, ALIGN) + i * WORKER_STACK_BYTES;
      const block = host.malloc(WORKER_STACK_BYTES + ALIGN);
      if (!block) throw new RangeError('native kernels: the host heap could not allocate a stack');
      return Math.floor((block + WORKER_STACK_BYTES) / 16) * 16;
    };
    if (host) this.fns.set_stack_pointer!(stackTop(0));
    this.dataBase = align(heapBase, ALIGN) + (threads - 1) * WORKER_STACK_BYTES;
    this.top = this.dataBase;
    if (!host) this.ensure(this.dataBase);
    this.view = new Float32Array(this.memory.buffer);
    for (let i = 1; i < threads; i++) {
      try {
        this.workers.push(this.startWorker(module, stackTop(i)));
      } catch (error) {
        this.dispose();
        throw error;
      }
    }
    this.threads = threads;
  }

  private startWorker(module: WebAssembly.Module, stackTop: number): WorkerHandle {
    const control = new SharedArrayBuffer(CONTROL_SLOTS * 4);
    const ctl = new Int32Array(control);
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      execArgv: [],
      workerData: { module, memory: this.memory, control, stackTop, names: JOB_FUNCTIONS },
    });
    worker.unref(); // an idle kernel thread must not keep the process alive
    // Failures inside jobs are reported through the control block; this only keeps an unexpected
    // worker error from becoming an unhandled 'error' event.
    worker.on('error', () => {});
    const handle = { worker, ctl, seq: 0 };
    if (Atomics.wait(ctl, READY, 0, 60_000) === 'timed-out') {
      void worker.terminate();
      throw new Error('native kernel worker did not start within 60 s');
    }
    if (ctl[ERROR]) {
      void worker.terminate();
      throw new Error(`native kernel worker failed to start: ${message(ctl)}`);
    }
    return handle;
  }

  /** Whether the module runs on another module's memory (HostHeap): tensors there need no copies. */
  get sharesHostHeap(): boolean {
    return this.host !== null;
  }

  /** Starts a new set of buffers: everything allocated since the last reset is free again. */
  reset(): void {
    this.top = this.dataBase;
    for (const block of this.hostBlocks) this.host!.free(block);
    this.hostBlocks = [];
  }

  /** Allocates n floats (64-byte aligned, uninitialised) and returns their byte address. */
  alloc(floats: number): number {
    const bytes = Math.max(0, floats) * 4;
    if (this.host) {
      const block = this.host.malloc(bytes + ALIGN);
      if (!block) throw new RangeError(`native kernels: the host heap could not allocate ${bytes} bytes`);
      this.hostBlocks.push(block);
      return align(block, ALIGN);
    }
    const ptr = align(this.top, ALIGN);
    this.top = ptr + bytes;
    this.ensure(this.top);
    return ptr;
  }

  /** The address of `values` if it is a view of this memory (nothing to copy), else null. */
  private addressOf(values: ArrayLike<number>): number | null {
    return values instanceof Float32Array && values.buffer === this.memory.buffer ? values.byteOffset : null;
  }

  /**
   * The address of `values` in this memory: where it already is when it is a view of it (a tfjs
   * tensor, on a host heap; kernels only read their inputs), else a new buffer filled with a copy.
   */
  put(values: ArrayLike<number>): number {
    const at = this.addressOf(values);
    if (at !== null) return at;
    const ptr = this.alloc(values.length);
    this.f32().set(values, ptr >> 2);
    this.copiedFloats += values.length;
    return ptr;
  }

  /** Where a kernel should write n floats meant for `out`: out itself when it is in this memory. */
  place(out: Float32Array | undefined, floats: number): number {
    return (out && this.addressOf(out)) ?? this.alloc(floats);
  }

  /** A copy of n floats at ptr, or the floats copied into `out` (nothing to copy if they are there). */
  read(ptr: number, floats: number, out?: Float32Array): Float32Array {
    if (out && this.addressOf(out) === ptr) return out;
    const values = this.f32().subarray(ptr >> 2, (ptr >> 2) + floats);
    this.copiedFloats += floats;
    if (!out) return values.slice();
    out.set(values);
    return out;
  }

  /** Writes a struct of 32-bit fields (integers and pointers) and returns its address. */
  struct(fields: number[]): number {
    const ptr = this.alloc(fields.length);
    new Int32Array(this.memory.buffer, ptr, fields.length).set(fields);
    return ptr;
  }

  /**
   * A queue the threads of one run take units of work from (csrc/kernels.h, take_unit): the next
   * unit to hand out, then one count per thread. Returns its address, valid until the next reset.
   */
  workQueue(): number {
    return this.struct(new Array<number>(1 + this.threads).fill(0));
  }

  /** One job per thread, each on its contiguous range of `items` (splitRanges). */
  jobsByRange(items: number, job: (begin: number, end: number) => Job): Job[][] {
    return splitRanges(items, this.threads).map(([begin, end]) => [job(begin, end)]);
  }

  /**
   * One job per thread (a worker runs one job per run), all taking units from one new work queue
   * (workQueue): `job` gets the queue's address and the thread's index, the C function's arguments.
   */
  jobsByQueue(job: (queue: number, thread: number) => Job): Job[][] {
    const queue = this.workQueue();
    return Array.from({ length: this.threads }, (_, t) => [job(queue, t)]);
  }

  /** How many units each thread took from a work queue in the last run, thread 0 first. */
  unitsTaken(queue: number): number[] {
    return Array.from(new Int32Array(this.memory.buffer, queue + 4, this.threads));
  }

  f32(): Float32Array {
    if (this.view.buffer.byteLength !== this.memory.buffer.byteLength) this.view = new Float32Array(this.memory.buffer);
    return this.view;
  }

  call(fn: string, ...args: number[]): number {
    const f = this.fns[fn];
    if (!f) throw new Error(`native module lacks ${fn}`);
    return f(...args);
  }

  /**
   * Runs jobs on all threads at once and returns when every job is done: perThread[0] is the
   * calling thread's list (run in order), perThread[w] holds at most one job for worker w. A worker
   * is handed one job per run, because it could only get a next one once the calling thread had
   * finished its own list: work that must overlap is one job per thread (a C function looping over
   * its share).
   */
  run(perThread: Job[][]): JobRecord[] {
    if (perThread.length > this.threads) throw new Error(`${perThread.length} job lists for ${this.threads} threads`);
    const crowded = perThread.findIndex((jobs, w) => w > 0 && jobs.length > 1);
    if (crowded > 0) throw new Error(`worker ${crowded} was given ${perThread[crowded]!.length} jobs; a worker runs one job per run`);
    const records: JobRecord[] = [];
    const active = new Map<number, Job>();
    for (let w = 1; w < perThread.length; w++) {
      const job = perThread[w]![0];
      if (!job) continue;
      const handle = this.workers[w - 1]!;
      if (job.args.length > MAX_ARGS) throw new Error(`${job.fn}: more than ${MAX_ARGS} arguments`);
      handle.ctl[FN] = JOB_FUNCTIONS.indexOf(job.fn);
      handle.ctl[NARGS] = job.args.length;
      handle.ctl.set(job.args, ARGS);
      handle.seq++;
      Atomics.store(handle.ctl, SEQ, handle.seq);
      Atomics.notify(handle.ctl, SEQ);
      active.set(w, job);
    }
    let failure: unknown;
    try {
      for (const job of perThread[0] ?? []) {
        this.call(job.fn, ...job.args);
        records.push({ fn: job.fn, args: [...job.args], ...(job.label ? { label: job.label } : {}), thread: 0, threadId });
      }
    } catch (error) {
      failure = error;
    }
    // Wait for every worker, also after a failure here: they use the same memory.
    for (const [w, job] of active) {
      const handle = this.workers[w - 1]!;
      while (Atomics.load(handle.ctl, DONE) !== handle.seq) Atomics.wait(handle.ctl, DONE, handle.seq - 1, 1000);
      if (handle.ctl[ERROR]) {
        failure ??= new Error(`native kernel ${job.fn} failed on worker ${w}: ${message(handle.ctl)}`);
        handle.ctl[ERROR] = 0;
        continue;
      }
      // The worker's own report of what it ran, checked against what it was given.
      const ran = JOB_FUNCTIONS[handle.ctl[RAN_FN]!]!;
      const args = Array.from(handle.ctl.subarray(RAN_ARGS, RAN_ARGS + job.args.length));
      if (ran !== job.fn || args.some((v, i) => v !== job.args[i])) failure ??= new Error(`worker ${w} reports ${ran}(${args}), expected ${job.fn}(${job.args})`);
      records.push({ fn: ran, args, ...(job.label ? { label: job.label } : {}), thread: w, threadId: handle.ctl[WORKER_THREAD_ID]! });
    }
    if (failure !== undefined) throw failure;
    this.log.push(records);
    if (this.log.length > RUN_LOG_LENGTH) this.log.shift();
    return records;
  }

  /** What each thread ran in the last runs (up to 32), oldest first: for tests and diagnostics. */
  runLog(): JobRecord[][] {
    return this.log.map((records) => records.map((r) => ({ ...r, args: [...r.args] })));
  }

  clearRunLog(): void {
    this.log.length = 0;
  }

  dispose(): void {
    for (const handle of this.workers) {
      handle.ctl[FN] = -1;
      handle.seq++;
      Atomics.store(handle.ctl, SEQ, handle.seq);
      Atomics.notify(handle.ctl, SEQ);
      void handle.worker.terminate();
    }
    this.workers.length = 0;
    if (this.host) this.reset();
  }

  private ensure(bytes: number): void {
    if (this.host) return;
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    const pages = Math.ceil((bytes - have) / PAGE_BYTES);
    if (have / PAGE_BYTES + pages > MAX_PAGES) throw new RangeError(`native kernels need ${bytes} bytes, more than the ${MAX_PAGES * PAGE_BYTES} maximum`);
    // Grow by at least a quarter, so a sequence of slightly larger calls does not grow every time.
    this.memory.grow(Math.min(MAX_PAGES - have / PAGE_BYTES, Math.max(pages, Math.ceil(have / PAGE_BYTES / 4))));
  }
}

function align(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

function message(ctl: Int32Array): string {
  let s = '';
  for (let i = 0; i < MESSAGE_LEN && ctl[MESSAGE + i]; i++) s += String.fromCharCode(ctl[MESSAGE + i]!);
  return s;
}

let runtime: NativeRuntime | null | undefined;
let status: NativeKernelsStatus = { available: false, threads: 0, reason: 'not loaded yet' };
let configuredThreads: number | undefined;
let configuredSimd: SimdChoice | undefined;

/** Threads for the kernels: configured > the wasm backend's (prepareWasmBackend) > $FILMGENRE_WASM_THREADS > cores. */
function defaultThreads(): number {
  if (configuredThreads !== undefined) return configuredThreads;
  const prepared = preparedWasmThreads();
  if (prepared !== undefined) return prepared;
  const fromEnv = Number(process.env[WASM_THREADS_ENV]);
  return fromEnv > 0 ? Math.floor(fromEnv) : os.availableParallelism();
}

function simdChoice(): SimdChoice {
  const choice = configuredSimd ?? process.env[WASM_SIMD_ENV] ?? 'auto';
  if (choice !== 'auto' && !SIMD_VARIANTS.includes(choice as SimdVariant)) {
    throw new NativeBuildError(`${WASM_SIMD_ENV}=${choice}: use auto, ${SIMD_VARIANTS.join(' or ')}`);
  }
  return choice as SimdChoice;
}

/** The build to load for a choice (built if needed), and why relaxed was passed over when auto did. */
function pickBuild(choice: SimdChoice): { build: NativeBuild; note?: string } {
  if (choice === 'simd128') return { build: buildNativeModule({ variant: 'simd128' }) };
  let note: string;
  if (relaxedSimdSupported()) {
    try {
      return { build: buildNativeModule({ variant: 'relaxed' }) };
    } catch (error) {
      if (choice === 'relaxed' || !(error instanceof NativeBuildError)) throw error;
      note = error.message;
    }
  } else {
    if (choice === 'relaxed') throw new NativeBuildError('this runtime does not accept relaxed SIMD');
    note = 'this runtime does not accept relaxed SIMD';
  }
  return { build: buildNativeModule({ variant: 'simd128' }), note };
}

/**
 * Sets the thread count of the native kernels (the calling thread included; default: the wasm
 * backend's, else $FILMGENRE_WASM_THREADS, else one per core) and which build runs (default
 * $FILMGENRE_WASM_SIMD, else auto). Restarts them if already running with other settings.
 */
export function configureNativeKernels(options: { threads?: number; simd?: SimdChoice }): void {
  const threads = options.threads === undefined ? undefined : Math.max(1, Math.floor(options.threads));
  const simdBefore = configuredSimd;
  configuredThreads = threads;
  if ('simd' in options) configuredSimd = options.simd;
  const changed = (threads !== undefined && runtime?.threads !== threads) || configuredSimd !== simdBefore;
  // A running runtime restarts with the new settings; one that failed to load tries again.
  if (runtime && changed) runtime.dispose();
  if ((runtime && changed) || runtime === null) runtime = undefined;
}

/** The module, loaded (and compiled if needed) on first use; null when unavailable (see status). */
export function nativeRuntime(): NativeRuntime | null {
  // A runtime started before tfjs's threaded wasm build was up moves onto its heap once it is.
  if (runtime && !runtime.sharesHostHeap && !attachFailed && !hostHeapRuledOut && tfjsWasmHeap()) {
    const threads = runtime.threads;
    runtime.dispose();
    runtime = undefined;
    configuredThreads ??= threads; // the same thread count as before the move
  }
  if (runtime !== undefined) return runtime;
  const threads = defaultThreads();
  if (process.env[NATIVE_KERNELS_ENV] === '0') {
    runtime = null;
    status = { available: false, threads: 0, reason: `disabled by ${NATIVE_KERNELS_ENV}=0` };
    return runtime;
  }
  if (typeof SharedArrayBuffer === 'undefined') {
    runtime = null;
    status = { available: false, threads: 0, reason: 'SharedArrayBuffer unavailable' };
    return runtime;
  }
  try {
    const { build, note } = pickBuild(simdChoice());
    let sharedHeapNote: string | undefined;
    const heap = attachFailed ? null : tfjsWasmHeap();
    if (heap) {
      try {
        runtime = new NativeRuntime(threads, build, heap);
      } catch (error) {
        attachFailed = true;
        sharedHeapNote = `on its own memory: tfjs's heap refused it (${(error as Error).message})`;
      }
    }
    runtime ??= new NativeRuntime(threads, build);
    status = {
      available: true, threads, modulePath: runtime.modulePath, compiledNow: runtime.compiledNow, simd: build.variant,
      sharedHeap: runtime.sharesHostHeap, ...(note ? { simdNote: note } : {}), ...(sharedHeapNote ? { sharedHeapNote } : {}),
    };
  } catch (error) {
    runtime = null;
    const reason = error instanceof NativeBuildError ? error.message : `failed to load: ${(error as Error).message}`;
    status = { available: false, threads: 0, reason };
  }
  return runtime;
}

let attachFailed = false;
/** Set once tfjs's wasm backend is up without a shared memory: every later kernel call skips the probe. */
let hostHeapRuledOut = false;

/**
 * tfjs-backend-wasm's heap when the native module can run on it: the backend is initialised (this
 * never starts it) with its threaded build, whose memory is shared. Null otherwise, or when
 * $FILMGENRE_NATIVE_SHARED_HEAP is 0.
 */
function tfjsWasmHeap(): HostHeap | null {
  if (process.env[SHARED_HEAP_ENV] === '0') return null;
  const backend = tf.engine().registry.wasm as unknown as { wasm?: EmscriptenHeap } | undefined;
  const module = backend?.wasm;
  if (!module) return null; // not started yet: ask again on a later call
  const memory = module.wasmMemory;
  if (!memory || !(memory.buffer instanceof SharedArrayBuffer) || typeof module._malloc !== 'function' || typeof module._free !== 'function') {
    hostHeapRuledOut = true;
    return null;
  }
  return { memory, malloc: (bytes) => module._malloc(bytes) >>> 0, free: (ptr) => module._free(ptr) };
}

/** What tfjs-backend-wasm's emscripten module exposes that HostHeap needs. */
interface EmscriptenHeap {
  wasmMemory?: WebAssembly.Memory;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
}

export function nativeKernelsStatus(): NativeKernelsStatus {
  return { ...status };
}
