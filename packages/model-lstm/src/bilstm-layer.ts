import * as tf from '@tensorflow/tfjs';
import { fusedBiLstm, fusedBiLstmAvailable, nativeKernelsStatus } from '@filmgenre/wasm-kernels';

/**
 * How FastBiLSTM computes: 'fused' = one native kernel call per layer and pass (the project's own
 * WebAssembly module, both directions on two threads); 'ops' = tfjs ops (the reference
 * implementation, any backend); 'auto' = fused when the module is available, else ops.
 */
export const BILSTM_KERNELS = ['auto', 'fused', 'ops'] as const;
export type BiLSTMKernel = (typeof BILSTM_KERNELS)[number];
/** Overrides 'auto' process-wide: FILMGENRE_LSTM_KERNEL=ops|fused. */
export const BILSTM_KERNEL_ENV = 'FILMGENRE_LSTM_KERNEL';

export interface FastBiLSTMArgs {
  units: number;
  returnSequences?: boolean;
  /** Keras's default: the forget gate starts open (bias 1) so early gradients flow through time. */
  unitForgetBias?: boolean;
  /** Implementation (not part of the saved config: both compute the same function). Default 'auto'. */
  kernel?: BiLSTMKernel;
  name?: string;
  trainable?: boolean;
}

let announced = false;

/** The implementation a layer asking for `requested` uses; says once per process which one and why. */
export function resolveBiLSTMKernel(requested: BiLSTMKernel = 'auto'): 'fused' | 'ops' {
  const fromEnv = process.env[BILSTM_KERNEL_ENV];
  let wanted = requested;
  if (requested === 'auto' && fromEnv) {
    if (!(BILSTM_KERNELS as readonly string[]).includes(fromEnv)) throw new Error(`${BILSTM_KERNEL_ENV} must be one of ${BILSTM_KERNELS.join(', ')}, got '${fromEnv}'`);
    wanted = fromEnv as BiLSTMKernel;
  }
  if (wanted === 'ops') return 'ops';
  const available = fusedBiLstmAvailable();
  if (wanted === 'fused' && !available) throw new Error(`FastBiLSTM: fused kernel requested but unavailable: ${nativeKernelsStatus().reason}`);
  if (!announced) {
    announced = true;
    const status = nativeKernelsStatus();
    console.warn(available
      ? `[model-lstm] BiLSTM: fused native kernel (${status.simd === 'relaxed' ? 'relaxed SIMD' : 'SIMD'}), ${status.threads} thread${status.threads === 1 ? '' : 's'}`
      : `[model-lstm] BiLSTM: fused native kernel unavailable (${status.reason}); using the slower tfjs-op path`);
  }
  return available ? 'fused' : 'ops';
}

type Kwargs = { mask?: tf.Tensor | tf.Tensor[] | null; training?: boolean };

/**
 * Bidirectional LSTM (merge mode 'concat') with the maths of
 * `tf.layers.bidirectional({ layer: tf.layers.lstm({ units, recurrentActivation: 'sigmoid' }) })`
 * and the same weights in the same order (forward kernel, recurrent kernel, bias, then backward), so
 * `setWeights(bidirectional.getWeights())` reproduces that layer's outputs.
 *
 * Why a custom layer: tfjs's RNN runs one directional cell at a time and, per timestep, multiplies the
 * input by the kernel, slices, masks and stacks with many small ops; kernel dispatch, not arithmetic,
 * dominates. Two implementations (`kernel` option):
 * - 'fused' (default where available): `fusedBiLstm` of @filmgenre/wasm-kernels, one native SIMD
 *   kernel call per layer for the whole sequence, forward and backward through time, the two
 *   directions on two threads;
 * - 'ops' (the reference, any backend): the input projection of all timesteps of both directions is
 *   one large matMul, and each timestep of both directions together is one recurrent matMul plus a
 *   handful of element-wise ops, inside one custom-gradient op.
 *
 * Masking follows Keras: a masked timestep keeps the previous state and repeats the previous output,
 * so padded positions do not change the result.
 */
export class FastBiLSTM extends tf.layers.Layer {
  static readonly className = 'FilmGenreFastBiLSTM';
  readonly units: number;
  readonly returnSequences: boolean;
  readonly unitForgetBias: boolean;
  readonly kernel: BiLSTMKernel;
  private weightsByName: Record<string, tf.LayerVariable> = {};

  constructor(args: FastBiLSTMArgs) {
    super({ name: args.name, trainable: args.trainable });
    if (!Number.isInteger(args.units) || args.units <= 0) throw new Error(`FastBiLSTM: units must be a positive integer, got ${args.units}`);
    this.units = args.units;
    this.returnSequences = args.returnSequences ?? false;
    this.unitForgetBias = args.unitForgetBias ?? true;
    if (args.kernel !== undefined && !BILSTM_KERNELS.includes(args.kernel)) throw new Error(`FastBiLSTM: kernel must be one of ${BILSTM_KERNELS.join(', ')}`);
    this.kernel = args.kernel ?? 'auto';
    this.supportsMasking = true;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const inputDim = shape[shape.length - 1];
    if (inputDim == null) throw new Error('FastBiLSTM: the last input dimension must be known');
    const u = this.units;
    for (const dir of ['forward', 'backward'] as const) {
      this.weightsByName[`${dir}_kernel`] = this.addWeight(`${dir}_kernel`, [inputDim, 4 * u], 'float32',
        tf.initializers.glorotUniform({}));
      // Orthogonal (Keras's default), computed here: tfjs's orthogonal initializer runs a Gram–Schmidt
      // of tensor ops that takes tens of seconds on the cpu backend for a 64×256 kernel.
      const recurrent = this.addWeight(`${dir}_recurrent_kernel`, [u, 4 * u], 'float32', tf.initializers.zeros());
      tf.tidy(() => {
        recurrent.write(tf.tensor2d(orthonormalRows(u, 4 * u), [u, 4 * u]));
      });
      this.weightsByName[`${dir}_recurrent_kernel`] = recurrent;
      const bias = this.addWeight(`${dir}_bias`, [4 * u], 'float32', tf.initializers.zeros());
      if (this.unitForgetBias) {
        // Gate order i, f, c, o as in tfjs and Keras: ones for the forget gate only.
        const values = new Float32Array(4 * u).fill(1, u, 2 * u);
        tf.tidy(() => {
          bias.write(tf.tensor1d(values));
        });
      }
      this.weightsByName[`${dir}_bias`] = bias;
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return this.returnSequences ? [shape[0]!, shape[1]!, 2 * this.units] : [shape[0]!, 2 * this.units];
  }

  override computeMask(_inputs: tf.Tensor | tf.Tensor[], mask?: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const m = Array.isArray(mask) ? mask[0] : mask;
    // tfjs types computeMask as non-null, but null (no mask) is what its own layers return.
    return (this.returnSequences && m ? m : null) as unknown as tf.Tensor;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0]! : inputs) as tf.Tensor3D;
      const rawMask = Array.isArray(kwargs.mask) ? kwargs.mask[0] : kwargs.mask;
      const w = (n: string) => this.weightsByName[n]!.read();
      if (resolveBiLSTMKernel(this.kernel) === 'fused') {
        return fusedBiLstm(x, rawMask ?? null, {
          forwardKernel: w('forward_kernel'), forwardRecurrent: w('forward_recurrent_kernel'), forwardBias: w('forward_bias'),
          backwardKernel: w('backward_kernel'), backwardRecurrent: w('backward_recurrent_kernel'), backwardBias: w('backward_bias'),
        }, { units: this.units, returnSequences: this.returnSequences });
      }
      return biLstmSequence(x, rawMask ?? null, {
        kernelF: w('forward_kernel'), kernelB: w('backward_kernel'),
        recF: w('forward_recurrent_kernel'), recB: w('backward_recurrent_kernel'),
        biasF: w('forward_bias'), biasB: w('backward_bias'),
      }, this.units, this.returnSequences);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      returnSequences: this.returnSequences,
      unitForgetBias: this.unitForgetBias,
    };
  }
}
tf.serialization.registerClass(FastBiLSTM);

/** A rows × cols matrix (rows ≤ cols) with orthonormal rows: modified Gram–Schmidt of Gaussian rows. */
export function orthonormalRows(rows: number, cols: number, random: () => number = Math.random): Float32Array {
  if (rows > cols) throw new RangeError(`orthonormalRows: ${rows} rows cannot be orthonormal in ${cols} dimensions`);
  const m = new Float64Array(rows * cols);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  for (let r = 0; r < rows; r++) {
    const row = m.subarray(r * cols, (r + 1) * cols);
    for (;;) {
      for (let c = 0; c < cols; c++) row[c] = gaussian();
      for (let p = 0; p < r; p++) {
        const prev = m.subarray(p * cols, (p + 1) * cols);
        let dot = 0;
        for (let c = 0; c < cols; c++) dot += row[c]! * prev[c]!;
        for (let c = 0; c < cols; c++) row[c] -= dot * prev[c]!;
      }
      let norm = 0;
      for (let c = 0; c < cols; c++) norm += row[c]! * row[c]!;
      norm = Math.sqrt(norm);
      if (norm > 1e-6) {
        for (let c = 0; c < cols; c++) row[c] /= norm;
        break;
      }
    }
  }
  return Float32Array.from(m);
}

/** Gate blocks of a tfjs/Keras LSTM weight, [i, f, c, o] along the last axis, reordered to [i, f, o, c]. */
function toIfoc(w: tf.Tensor, units: number): tf.Tensor {
  const [i, f, c, o] = tf.split(w, [units, units, units, units], w.rank - 1);
  return tf.concat([i!, f!, o!, c!], w.rank - 1);
}

/**
 * Both directions of one bidirectional LSTM layer. Returns [B, T, 2U] (returnSequences) or [B, 2U].
 *
 * Performance notes for the single-threaded wasm backend, where op dispatch and layout copies dominate:
 * - input projection, recurrence and backpropagation through time are one custom-gradient op, so the
 *   backward pass is a few ops per step and uses only plain matMuls (wasm's matMul with transposeA or
 *   transposeB runs several times slower; the few transposes needed are explicit, once per sequence);
 * - inside, everything is stored transposed (units × batch) with gates outermost, so splitting gates
 *   and timesteps are contiguous copies rather than strided slices;
 * - both directions share every per-step op: the recurrent step is one matMul with a block-diagonal
 *   kernel and the backward direction's inputs are reversed in time once, up front.
 */
function biLstmSequence(
  x: tf.Tensor3D,
  mask: tf.Tensor | null,
  w: { kernelF: tf.Tensor; kernelB: tf.Tensor; recF: tf.Tensor; recB: tf.Tensor; biasF: tf.Tensor; biasB: tf.Tensor },
  units: number,
  returnSequences: boolean,
): tf.Tensor {
  const [batch, steps, dim] = x.shape;
  const u = units;
  const xTime = tf.reshape(tf.transpose(x, [1, 0, 2]), [steps * batch, dim]); // time-major rows
  const inputs: tf.Tensor[] = [
    xTime, toIfoc(w.kernelF, u), toIfoc(w.kernelB, u), toIfoc(w.biasF, u), toIfoc(w.biasB, u),
    toIfoc(w.recF, u), toIfoc(w.recB, u),
  ];
  if (mask) {
    // [T, 2U, B]: rows of the forward direction carry the mask at time t, backward rows that at T-1-t.
    const m = tf.transpose(tf.cast(tf.cast(mask, 'bool'), 'float32'), [1, 0]); // [T, B]
    const both = tf.stack([m, tf.reverse(m, 0)], 1); // [T, 2, B]
    inputs.push(tf.reshape(tf.tile(tf.reshape(both, [steps, 2, 1, batch]), [1, 1, u, 1]), [steps, 2 * u, batch]));
  }
  const states = tf.customGrad((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    return recurrence(args.slice(0, inputs.length) as tf.Tensor[], batch, steps, u, save);
  })(...inputs); // [T, 2U, B] in processing order: forward h(t) over backward h after reading T-1-t
  const rows = tf.transpose(states, [0, 2, 1]); // [T, B, 2U]
  if (!returnSequences) return tf.reshape(tf.slice(rows, [steps - 1, 0, 0], [1, batch, 2 * u]), [batch, 2 * u]);
  const [hf, hb] = tf.split(rows, 2, 2);
  return tf.transpose(tf.concat([hf!, tf.reverse(hb!, 0)], 2), [1, 0, 2]);
}

type GradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];

function recurrence(inputs: tf.Tensor[], batch: number, steps: number, u: number, save: tf.GradSaveFunc): { value: tf.Tensor; gradFunc: GradFunc } {
  const [x2, wF, wB, bF, bB, rF, rB, stepMask] = inputs as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.Tensor2D, tf.Tensor2D, tf.Tensor | undefined];
  const recT = blockRecurrentT(rF, rB, u); // [8U, 2U], rows ordered (gate, direction, unit)
  // Input projections for every timestep: [T, 8U, B] with rows (gate, direction, unit); the backward
  // direction's rows come from time T-1-t.
  const pF = tf.reshape(tf.add(tf.matMul(x2, wF), bF), [steps, batch, 4, u]);
  const pB = tf.reverse(tf.reshape(tf.add(tf.matMul(x2, wB), bB), [steps, batch, 4, u]), 0);
  const proj = tf.transpose(tf.reshape(tf.stack([pF, pB], 3), [steps, batch, 8 * u]), [0, 2, 1]);
  // Timesteps are taken with gather: wasm's Slice/Split copy the whole input tensor for every piece.
  const index = Array.from({ length: steps }, (_, t) => tf.scalar(t, 'int32'));
  let h: tf.Tensor = tf.zeros([1, 2 * u, batch]);
  let c: tf.Tensor = tf.zeros([1, 2 * u, batch]);
  const hs: tf.Tensor[] = [];
  // Saved per step for the backward pass: h(t-1), c(t-1), sigmoid gates [i; f; o], candidate g, tanh(c').
  const perStep: tf.Tensor[] = [];
  for (let t = 0; t < steps; t++) {
    const z = tf.reshape(tf.add(tf.gather(proj, index[t]!), tf.matMul(recT, tf.reshape(h, [2 * u, batch]))), [4, 2 * u, batch]);
    const [zs, zc] = tf.split(z, [3, 1], 0);
    const sg = tf.sigmoid(zs!);
    const g = tf.tanh(zc!);
    const [i, f, o] = tf.split(sg, 3, 0);
    const cNew = tf.add(tf.mul(f!, c), tf.mul(i!, g));
    const tc = tf.tanh(cNew);
    const hNew = tf.mul(o!, tc);
    perStep.push(h, c, sg, g, tc);
    if (stepMask) {
      // A masked step keeps the previous state, as Keras's RNN does.
      const m = tf.gather(stepMask, index[t]!);
      c = tf.add(c, tf.mul(m, tf.sub(cNew, c)));
      h = tf.add(h, tf.mul(m, tf.sub(hNew, h)));
    } else {
      c = cNew;
      h = hNew;
    }
    hs.push(h);
  }
  save([x2, wF, wB, recT, ...(stepMask ? [stepMask] : []), ...perStep]);
  const value = tf.concat(hs, 0);

  const gradFunc: GradFunc = (dy, saved) => {
    const [sx2, swF, swB, srecT] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    const smask = stepMask ? saved[4]! : null;
    const per = saved.slice(stepMask ? 5 : 4);
    const at = Array.from({ length: steps }, (_, t) => tf.scalar(t, 'int32'));
    const rec = tf.transpose(srecT); // [2U, 8U]: transposed once so each step's matMul is plain
    const dzs: tf.Tensor[] = new Array(steps);
    let dhNext: tf.Tensor | null = null;
    let dcNext: tf.Tensor | null = null;
    for (let t = steps - 1; t >= 0; t--) {
      const [, cPrev, sg, g, tc] = per.slice(5 * t, 5 * t + 5) as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
      const [i, f, o] = tf.split(sg, 3, 0) as [tf.Tensor, tf.Tensor, tf.Tensor];
      const dyt = tf.gather(dy, at[t]!);
      const dh: tf.Tensor = dhNext ? tf.add(dyt, dhNext) : dyt;
      let dhN = dh;
      let dcN = dcNext;
      let keepH: tf.Tensor | null = null;
      let keepC: tf.Tensor | null = null;
      if (smask) {
        const m = tf.gather(smask, at[t]!);
        const notM = tf.sub(1, m);
        dhN = tf.mul(m, dh);
        keepH = tf.mul(notM, dh);
        if (dcNext) {
          dcN = tf.mul(m, dcNext);
          keepC = tf.mul(notM, dcNext);
        }
      }
      let dc = tf.mul(tf.mul(dhN, o), tf.sub(1, tf.square(tc)));
      if (dcN) dc = tf.add(dc, dcN);
      const dSig = tf.mul(tf.concat([tf.mul(dc, g), tf.mul(dc, cPrev), tf.mul(dhN, tc)], 0), tf.mul(sg, tf.sub(1, sg)));
      const dzc = tf.mul(tf.mul(dc, i), tf.sub(1, tf.square(g)));
      const dz = tf.reshape(tf.concat([dSig, dzc], 0), [8 * u, batch]);
      dzs[t] = dz;
      if (t > 0) {
        dcNext = keepC ? tf.add(tf.mul(dc, f), keepC) : tf.mul(dc, f);
        const back = tf.reshape(tf.matMul(rec, dz), [1, 2 * u, batch]);
        dhNext = keepH ? tf.add(back, keepH) : back;
      }
    }
    const dzAll = tf.stack(dzs); // [T, 8U, B]
    const hPrev = tf.concat(per.filter((_, k) => k % 5 === 0), 0); // [T, 2U, B]
    const dRecT = tf.matMul(
      tf.reshape(tf.transpose(dzAll, [1, 0, 2]), [8 * u, steps * batch]),
      tf.reshape(tf.transpose(hPrev, [0, 2, 1]), [steps * batch, 2 * u]),
    ); // [8U, 2U]
    // Back to the projections' layout: [T*B*4, 2, U] → direction first → forward / backward halves.
    const byDir = tf.transpose(tf.reshape(tf.transpose(dzAll, [0, 2, 1]), [steps * batch * 4, 2, u]), [1, 0, 2]);
    const [dPF3, dPB3] = tf.split(byDir, 2, 0);
    const dPF = tf.reshape(dPF3!, [steps * batch, 4 * u]);
    const dPB = tf.reshape(tf.reverse(tf.reshape(dPB3!, [steps, batch, 4 * u]), 0), [steps * batch, 4 * u]);
    const x2T = tf.transpose(sx2);
    const dX = tf.add(tf.matMul(dPF, tf.transpose(swF)), tf.matMul(dPB, tf.transpose(swB)));
    const [dRF, dRB] = splitBlockRecurrentT(dRecT, u);
    const grads = [dX, tf.matMul(x2T, dPF), tf.matMul(x2T, dPB), tf.sum(dPF, 0), tf.sum(dPB, 0), dRF, dRB];
    if (smask) grads.push(tf.zerosLike(smask));
    return grads;
  };
  return { value, gradFunc };
}

/** [U, 4U] recurrent kernels of both directions → block-diagonal transposed [8U, 2U], rows (gate, direction, unit). */
function blockRecurrentT(rF: tf.Tensor2D, rB: tf.Tensor2D, u: number): tf.Tensor2D {
  const fT = tf.reshape(tf.transpose(rF), [4, u, u]);
  const bT = tf.reshape(tf.transpose(rB), [4, u, u]);
  const zeros = tf.zeros([4, u, u]);
  const top = tf.concat([fT, zeros], 2);
  const bottom = tf.concat([zeros, bT], 2);
  return tf.reshape(tf.stack([top, bottom], 1), [8 * u, 2 * u]);
}

/** Gradient of blockRecurrentT: the two diagonal blocks back in [U, 4U] form. */
function splitBlockRecurrentT(dRecT: tf.Tensor, u: number): [tf.Tensor, tf.Tensor] {
  const blocks = tf.reshape(dRecT, [4, 2, u, 2 * u]);
  const dF = tf.reshape(tf.slice(blocks, [0, 0, 0, 0], [4, 1, u, u]), [4 * u, u]);
  const dB = tf.reshape(tf.slice(blocks, [0, 1, 0, u], [4, 1, u, u]), [4 * u, u]);
  return [tf.transpose(dF), tf.transpose(dB)];
}
