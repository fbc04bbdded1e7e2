import { nativeRuntime, type Job, type JobFunction, type JobRecord, type NativeRuntime } from './runtime.js';

/**
 * Fused bidirectional LSTM layer on the native module (`csrc/lstm.c`): one call runs both
 * directions over the whole sequence, forward or backward through time. With two or more threads
 * the directions run on two threads at once (they are independent), and the input gradient,
 * which needs both, is split by rows afterwards.
 *
 * Maths, weight layout and masking are those of Keras/tfjs
 * `Bidirectional(LSTM(units, recurrentActivation: 'sigmoid'), mergeMode: 'concat')`.
 */

export interface BiLstmShape {
  batch: number;
  steps: number;
  inputDim: number;
  units: number;
}

/** Weights per direction, [forward, backward], in the tfjs/Keras layout (gates i, f, c, o). */
export interface BiLstmWeights {
  /** [inputDim, 4·units] each. */
  kernel: readonly [Float32Array, Float32Array];
  /** [units, 4·units] each. */
  recurrent: readonly [Float32Array, Float32Array];
  /** [4·units] each. */
  bias: readonly [Float32Array, Float32Array];
}

/** What the backward pass needs from the forward pass (opaque to callers). */
export interface BiLstmActivations {
  readonly gates: readonly [Float32Array, Float32Array];
  readonly cells: readonly [Float32Array, Float32Array];
}

export interface BiLstmForwardResult {
  /** [batch, steps, 2·units]: forward direction's outputs in the first half of each row. */
  outputs: Float32Array;
  /** Present when requested (training). */
  activations?: BiLstmActivations;
}

export interface BiLstmGradients {
  /** [batch, steps, inputDim] */
  dx: Float32Array;
  dKernel: [Float32Array, Float32Array];
  dRecurrent: [Float32Array, Float32Array];
  dBias: [Float32Array, Float32Array];
}

export interface BiLstmOutputGradient {
  /** Gradient of `outputs` ([batch, steps, 2·units]), when the layer returns sequences. */
  sequence?: Float32Array;
  /** Gradient of the last output of each direction ([batch, 2·units]), when it returns only that. */
  last?: Float32Array;
}

/** The native runtime, or an error saying why it is unavailable. */
function runtimeOrThrow(): NativeRuntime {
  const rt = nativeRuntime();
  if (!rt) throw new Error('native kernels unavailable (see nativeKernelsStatus())');
  return rt;
}

function checkShape(s: BiLstmShape): void {
  for (const [k, v] of Object.entries(s)) {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`biLstm: ${k} must be a positive integer, got ${v}`);
  }
}

function checkLength(name: string, a: ArrayLike<number>, n: number): void {
  if (a.length !== n) throw new RangeError(`biLstm: ${name} has ${a.length} values, expected ${n}`);
}

function checkInputs(s: BiLstmShape, x: Float32Array, w: BiLstmWeights, mask: Float32Array | null): void {
  checkShape(s);
  const g = 4 * s.units;
  checkLength('x', x, s.batch * s.steps * s.inputDim);
  for (const d of [0, 1] as const) {
    checkLength(`kernel[${d}]`, w.kernel[d], s.inputDim * g);
    checkLength(`recurrent[${d}]`, w.recurrent[d], s.units * g);
    checkLength(`bias[${d}]`, w.bias[d], g);
  }
  if (mask) checkLength('mask', mask, s.batch * s.steps);
}

// Field order of lstm_dir_args in csrc/lstm.c (all 32-bit).
interface DirArgs {
  reverse: number; x: number; w: number; r: number; bias: number; mask: number; hSeq: number; hLd: number;
  gates: number; cells: number; work: number; dySeq: number; dyLast: number; dyLastLd: number;
  dz: number; dw: number; dr: number; db: number;
}

function dirStruct(rt: NativeRuntime, s: BiLstmShape, a: DirArgs): number {
  return rt.struct([
    s.batch, s.steps, s.inputDim, s.units, a.reverse, a.x, a.w, a.r, a.bias, a.mask, a.hSeq, a.hLd, a.gates, a.cells,
    a.work, a.dySeq, a.dyLast, a.dyLastLd, a.dz, a.dw, a.dr, a.db,
  ]);
}

const NONE = { dySeq: 0, dyLast: 0, dyLastLd: 0, dz: 0, dw: 0, dr: 0, db: 0 };

/** The two directions' jobs as per-thread lists: two threads run one each, one thread both. */
function byDirection(rt: NativeRuntime, fn: JobFunction, pass: string, structs: number[]): Job[][] {
  const jobs = structs.map((p, d): Job => ({ fn, args: [p], label: `${pass}, direction ${d}` }));
  return rt.threads >= 2 ? [[jobs[0]!], [jobs[1]!]] : [jobs];
}

/**
 * Where results should go instead of new arrays (views of tfjs's wasm heap, when the module runs on
 * it: the kernels then write there directly and nothing is copied).
 */
export interface BiLstmForwardDestinations {
  outputs?: Float32Array;
  gates?: readonly [Float32Array, Float32Array];
  cells?: readonly [Float32Array, Float32Array];
}

/** Runs both directions forward over the sequence. */
export function biLstmForward(
  shape: BiLstmShape,
  x: Float32Array,
  weights: BiLstmWeights,
  mask: Float32Array | null,
  options: { keepActivations?: boolean; into?: BiLstmForwardDestinations } = {},
): BiLstmForwardResult {
  checkInputs(shape, x, weights, mask);
  const rt = runtimeOrThrow();
  const { batch: B, steps: T, inputDim: D, units: U } = shape;
  const G = 4 * U;
  rt.reset();
  const workFloats = rt.call('lstm_work_floats', B, D, U);
  const px = rt.put(x);
  const pmask = mask ? rt.put(mask) : 0;
  const into = options.into ?? {};
  const pout = rt.place(into.outputs, B * T * 2 * U);
  const dirs = ([0, 1] as const).map((d): DirArgs => ({
    reverse: d, x: px, w: rt.put(weights.kernel[d]), r: rt.put(weights.recurrent[d]), bias: rt.put(weights.bias[d]),
    mask: pmask, hSeq: pout + d * U * 4, hLd: 2 * U, gates: rt.place(into.gates?.[d], B * T * G),
    cells: rt.place(into.cells?.[d], B * T * U), work: rt.alloc(workFloats), ...NONE,
  }));
  rt.run(byDirection(rt, 'lstm_forward_dir', 'forward pass', dirs.map((a) => dirStruct(rt, shape, a))));
  const outputs = rt.read(pout, B * T * 2 * U, into.outputs);
  if (!options.keepActivations) return { outputs };
  const gates = dirs.map((a, d) => rt.read(a.gates, B * T * G, into.gates?.[d])) as [Float32Array, Float32Array];
  const cells = dirs.map((a, d) => rt.read(a.cells, B * T * U, into.cells?.[d])) as [Float32Array, Float32Array];
  return { outputs, activations: { gates, cells } };
}

/**
 * Backpropagation through time for both directions, given the forward pass's outputs and
 * activations and the gradient of the layer's output.
 */
export function biLstmBackward(
  shape: BiLstmShape,
  x: Float32Array,
  weights: BiLstmWeights,
  mask: Float32Array | null,
  forward: { outputs: Float32Array; activations: BiLstmActivations },
  dy: BiLstmOutputGradient,
  into: Partial<BiLstmGradients> = {},
): BiLstmGradients {
  checkInputs(shape, x, weights, mask);
  const { batch: B, steps: T, inputDim: D, units: U } = shape;
  const G = 4 * U;
  checkLength('outputs', forward.outputs, B * T * 2 * U);
  if ((dy.sequence === undefined) === (dy.last === undefined)) throw new Error('biLstmBackward: give exactly one of dy.sequence, dy.last');
  if (dy.sequence) checkLength('dy.sequence', dy.sequence, B * T * 2 * U);
  if (dy.last) checkLength('dy.last', dy.last, B * 2 * U);
  const rt = runtimeOrThrow();
  rt.reset();
  const workFloats = rt.call('lstm_work_floats', B, D, U);
  const px = rt.put(x);
  const pmask = mask ? rt.put(mask) : 0;
  const pout = rt.put(forward.outputs);
  const pdySeq = dy.sequence ? rt.put(dy.sequence) : 0;
  const pdyLast = dy.last ? rt.put(dy.last) : 0;
  const pw = [rt.put(weights.kernel[0]), rt.put(weights.kernel[1])];
  const dirs = ([0, 1] as const).map((d) => {
    const args: DirArgs = {
      reverse: d, x: px, w: pw[d]!, r: rt.put(weights.recurrent[d]), bias: 0, mask: pmask, hSeq: pout + d * U * 4,
      hLd: 2 * U, gates: rt.put(forward.activations.gates[d]), cells: rt.put(forward.activations.cells[d]),
      work: rt.alloc(workFloats), dySeq: pdySeq ? pdySeq + d * U * 4 : 0, dyLast: pdyLast ? pdyLast + d * U * 4 : 0,
      dyLastLd: 2 * U, dz: rt.alloc(B * T * G), dw: rt.place(into.dKernel?.[d], D * G), dr: rt.place(into.dRecurrent?.[d], U * G),
      db: rt.place(into.dBias?.[d], G),
    };
    return { args, struct: dirStruct(rt, shape, args) };
  });
  rt.run(byDirection(rt, 'lstm_backward_dir', 'backward pass', dirs.map((d) => d.struct)));
  // dx needs both directions' dz: split its rows over the threads.
  const rows = B * T;
  const pdx = rt.place(into.dx, rows * D);
  const gemmWork = rt.call('gemm_work_len', D);
  rt.run(rt.jobsByRange(rows, (begin, end) => {
    const struct = rt.struct([rows, D, U, dirs[0]!.args.dz, dirs[1]!.args.dz, pw[0]!, pw[1]!, pdx, rt.alloc(gemmWork)]);
    return { fn: 'lstm_input_grad', args: [struct, begin, end], label: `input gradient, rows ${begin}-${end}` };
  }));
  const pair = (f: (a: DirArgs) => number, n: number, out?: readonly Float32Array[]) =>
    dirs.map((d, i) => rt.read(f(d.args), n, out?.[i])) as [Float32Array, Float32Array];
  return {
    dx: rt.read(pdx, rows * D, into.dx),
    dKernel: pair((a) => a.dw, D * G, into.dKernel),
    dRecurrent: pair((a) => a.dr, U * G, into.dRecurrent),
    dBias: pair((a) => a.db, G, into.dBias),
  };
}

/** The jobs each thread ran in the last native runs, oldest first (thread 0 is the caller). */
export function nativeRunLog(): JobRecord[][] {
  return nativeRuntime()?.runLog() ?? [];
}
