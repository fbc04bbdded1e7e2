import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { NATIVE_MIN_FLOATS, nativeRuntime, type NativeRuntime } from '../native/runtime.js';

/**
 * One Adam step for one variable in a single pass: reads the value, both moments and the gradient
 * once and writes the three new tensors. tfjs's AdamOptimizer spends twelve element-wise kernels
 * on the same update, each a full pass over memory: 40–50 ms per step for lstm-ref's 10,000 × 256
 * embedding on one thread. Large variables run on the native module (`csrc/adam.c`, SIMD, split
 * over its threads), small ones and hosts without it in JavaScript. Both compute tfjs's formula
 * one float32 operation at a time and agree bit for bit; they differ from tf.train.adam only in the
 * last bits of the bias corrections, which tfjs accumulates as float32 products step by step.
 *
 * Not a TensorFlow op: FusedAdamOptimizer (src/fused-adam.ts) runs it where it is registered and
 * the same formula as tfjs ops elsewhere.
 */
export const FUSED_ADAM_UPDATE = 'FilmgenreFusedAdamUpdate';

export interface FusedAdamUpdateAttrs {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** 1 − beta1^t and 1 − beta2^t for this step t (Adam's bias corrections). */
  biasCorrection1: number;
  biasCorrection2: number;
}

export const fusedAdamUpdateConfig: tf.KernelConfig = {
  kernelName: FUSED_ADAM_UPDATE,
  backendName: 'wasm',
  kernelFunc: ({ inputs, attrs, backend }) => {
    const wasm = backend as BackendWasm;
    const { value, m, v, gradient } = inputs as Record<'value' | 'm' | 'v' | 'gradient', tf.TensorInfo>;
    const a = attrs as unknown as FusedAdamUpdateAttrs;
    const size = tf.util.sizeFromShape(value.shape);
    for (const [name, t] of Object.entries({ m, v, gradient })) {
      if (t.dtype !== 'float32' || tf.util.sizeFromShape(t.shape) !== size) {
        throw new Error(`${FUSED_ADAM_UPDATE}: ${name} is ${t.dtype} ${JSON.stringify(t.shape)}, expected float32 like value ${JSON.stringify(value.shape)}`);
      }
    }
    const outputs = [value, m, v].map((t) => wasm.makeOutput(t.shape, 'float32'));
    // Views after makeOutput: allocating can grow (and detach) the wasm memory.
    const [p, m0, v0, g] = [value, m, v, gradient].map((t) => wasm.typedArrayFromHeap(t) as Float32Array);
    const [p1, m1, v1] = outputs.map((t) => wasm.typedArrayFromHeap(t) as Float32Array);
    const rt = size >= NATIVE_ADAM_MIN_FLOATS ? nativeRuntime() : null;
    if (rt) adamStepNative(rt, p!, m0!, v0!, g!, p1!, m1!, v1!, a);
    else adamStep(p!, m0!, v0!, g!, p1!, m1!, v1!, a);
    return outputs;
  },
};

/** Variables from this size on are updated on the native module (see NATIVE_MIN_FLOATS). */
export const NATIVE_ADAM_MIN_FLOATS = NATIVE_MIN_FLOATS;

/** Bits of a float32, for the float fields of a native struct. */
function floatBits(x: number): number {
  return new Int32Array(Float32Array.of(x).buffer)[0]!;
}

// On all the native module's threads; the copies in and out are skipped where it runs on tfjs's heap.
export function adamStepNative(
  rt: NativeRuntime, p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array,
  pOut: Float32Array, mOut: Float32Array, vOut: Float32Array, a: FusedAdamUpdateAttrs,
): void {
  rt.reset();
  const inputs = [p, m, v, g].map((values) => rt.put(values));
  const outputs = [pOut, mOut, vOut].map((out) => rt.place(out, p.length));
  const floats = [a.beta1, a.beta2, 1 - a.beta1, 1 - a.beta2, a.biasCorrection1, a.biasCorrection2, a.epsilon, -a.learningRate];
  const struct = rt.struct([...inputs, ...outputs, ...floats.map(floatBits)]);
  rt.run(rt.jobsByRange(p.length, (begin, end) => ({ fn: 'adam_update', args: [struct, begin, end], label: `Adam update, floats ${begin}-${end}` })));
  [pOut, mOut, vOut].forEach((out, i) => rt.read(outputs[i]!, p.length, out));
}

/**
 * The update in tfjs's AdamOptimizer's order of operations, each result rounded to float32 as
 * tfjs's kernels round it, so both paths agree to a rounding step:
 *   m' = m·β1 + g·(1 − β1), v' = v·β2 + g²·(1 − β2),
 *   value' = (m'/c1) / (√(v'/c2) + ε) · (−lr) + value.
 */
export function adamStep(
  p: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array,
  pOut: Float32Array, mOut: Float32Array, vOut: Float32Array, a: FusedAdamUpdateAttrs,
): void {
  const f = Math.fround;
  const b1 = f(a.beta1), b2 = f(a.beta2), oneMinusB1 = f(1 - a.beta1), oneMinusB2 = f(1 - a.beta2);
  const c1 = f(a.biasCorrection1), c2 = f(a.biasCorrection2), eps = f(a.epsilon), step = f(-a.learningRate);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    const mi = f(f(m[i]! * b1) + f(gi * oneMinusB1));
    const vi = f(f(v[i]! * b2) + f(f(gi * gi) * oneMinusB2));
    mOut[i] = mi;
    vOut[i] = vi;
    pOut[i] = f(f(f(f(mi / c1) / f(f(Math.sqrt(f(vi / c2))) + eps)) * step) + p[i]!);
  }
}
