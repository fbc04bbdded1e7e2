import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { fusedAdam } from './fused-adam.js';
import { adamStep, adamStepNative, FUSED_ADAM_UPDATE, NATIVE_ADAM_MIN_FLOATS } from './kernels/FusedAdamUpdate.js';
import { configureNativeKernels, nativeRuntime } from './native/runtime.js';
import { randomArray, rng, scaledMaxDiff, startWasm } from './test-setup.js';

// The first is large enough for the native path (NATIVE_ADAM_MIN_FLOATS), the others take the JS loop.
const SHAPES = [[300, 256], [37, 5], [4], [3, 3, 2, 4]];
const STEPS = 6;

/**
 * Applies the same seeded gradients for STEPS steps (no gradient for the second variable at step
 * 2, as when a variable is unused) and returns the final values.
 */
function train(backend: string, makeOptimizer: () => tf.Optimizer): Float32Array[] {
  tf.setBackend(backend);
  const next = rng(11);
  const vars = SHAPES.map((s, i) => tf.variable(tf.tensor(randomArray(tf.util.sizeFromShape(s), next), s), true, `adam_test_${backend}_${i}_${Math.random()}`));
  const optimizer = makeOptimizer();
  for (let step = 0; step < STEPS; step++) {
    tf.tidy(() => {
      // A variable without a gradient keeps its slot with null, as Optimizer.minimize passes it.
      const grads: Record<string, tf.Tensor | null> = {};
      vars.forEach((v, i) => {
        const g = tf.tensor(randomArray(v.size, next), v.shape).mul(i + 1);
        grads[v.name] = step === 2 && i === 1 ? null : g;
      });
      optimizer.applyGradients(grads as tf.NamedTensorMap);
    });
  }
  const out = vars.map((v) => v.dataSync() as Float32Array);
  tf.dispose(vars);
  optimizer.dispose();
  return out;
}

describe('FusedAdamOptimizer', () => {
  beforeAll(async () => {
    await startWasm(1);
  });

  it('on wasm (fused kernel) matches tf.train.adam on the cpu backend to rounding', () => {
    const reference = train('cpu', () => tf.train.adam(0.01));
    const fused = train('wasm', () => fusedAdam(0.01));
    for (let i = 0; i < SHAPES.length; i++) expect(scaledMaxDiff(fused[i]!, reference[i]!)).toBeLessThan(1e-6);
    // It moved the weights: a test of an update that does nothing would pass the line above too.
    const initial = train('cpu', () => fusedAdam(0));
    expect(scaledMaxDiff(reference[0]!, initial[0]!)).toBeGreaterThan(1e-3);
  });

  it('native (1 and 2 threads) and JavaScript updates agree bit for bit, and the native one runs for large variables', () => {
    expect(300 * 256).toBeGreaterThanOrEqual(NATIVE_ADAM_MIN_FLOATS);
    const next = rng(5);
    const n = 1003; // not a multiple of 4: the SIMD loop's scalar tail runs too
    const [p, m, v, g] = [0, 1, 2, 3].map((k) => randomArray(n, next).map((x) => (k === 2 ? Math.abs(x) : x)));
    const attrs = { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, biasCorrection1: 1 - 0.9 ** 3, biasCorrection2: 1 - 0.999 ** 3 };
    const js = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
    adamStep(p!, m!, v!, g!, js[0]!, js[1]!, js[2]!, attrs);
    for (const threads of [1, 2]) {
      configureNativeKernels({ threads });
      const native = [new Float32Array(n), new Float32Array(n), new Float32Array(n)];
      adamStepNative(nativeRuntime()!, p!, m!, v!, g!, native[0]!, native[1]!, native[2]!, attrs);
      expect(native).toEqual(js);
      expect(nativeRuntime()!.runLog().at(-1)!.map((r) => r.fn)).toEqual(new Array(threads).fill('adam_update'));
    }
    configureNativeKernels({ threads: 1 });
    nativeRuntime()!.clearRunLog();
    train('wasm', () => fusedAdam(0.01));
    expect(nativeRuntime()!.runLog().flat().map((r) => r.fn)).toEqual(new Array(STEPS).fill('adam_update'));
  });

  it('uses the tfjs ops where the backend has no fused kernel, with the same result', () => {
    expect(tf.getKernel(FUSED_ADAM_UPDATE, 'cpu')).toBeUndefined();
    const reference = train('cpu', () => tf.train.adam(0.01, 0.8, 0.99, 1e-6));
    const ops = train('cpu', () => fusedAdam(0.01, 0.8, 0.99, 1e-6));
    for (let i = 0; i < SHAPES.length; i++) expect(scaledMaxDiff(ops[i]!, reference[i]!)).toBeLessThan(1e-6);
  });

  it('runs one fused kernel per variable on wasm instead of the element-wise chain', async () => {
    tf.setBackend('wasm');
    const v = tf.variable(tf.ones([64, 32]), true, `adam_profile_${Math.random()}`);
    const optimizer = fusedAdam();
    const info = await tf.profile(() => tf.tidy(() => optimizer.applyGradients({ [v.name]: tf.fill([64, 32], 0.5) })));
    const kernels = info.kernels.map((k) => k.name);
    expect(kernels).toContain(FUSED_ADAM_UPDATE);
    expect(kernels).not.toContain('Sqrt');
    // The first step moves every weight by lr (Adam's first step is lr·sign(g)).
    expect(scaledMaxDiff(v.dataSync(), new Float32Array(64 * 32).fill(1 - 0.001))).toBeLessThan(1e-6);
    tf.dispose(v);
    optimizer.dispose();
  });

  it("saves and restores its moments under tf.train.adam's names, so checkpoints move between the two", async () => {
    tf.setBackend('wasm');
    const name = `adam_ckpt_${Math.random()}`;
    const v = tf.variable(tf.tensor1d([1, 2, 3]), true, name);
    const grad = (): tf.NamedTensorMap => ({ [name]: tf.tensor1d([0.5, -1, 2]) });
    const tfjs: tf.Optimizer = tf.train.adam(0.1);
    tf.tidy(() => tfjs.applyGradients(grad()));
    tf.tidy(() => tfjs.applyGradients(grad()));
    const saved = await tfjs.getWeights();
    const fused = fusedAdam(0.1);
    await fused.setWeights(saved.map((w) => ({ name: w.name, tensor: w.tensor.clone() })));
    expect((await fused.getWeights()).map((w) => w.name)).toEqual(saved.map((w) => w.name));
    expect(saved.map((w) => w.name)).toEqual(['iter', `${name}/m`, `${name}/v`]);
    // The next step from the restored state equals tf.train.adam's own next step.
    const start = v.clone();
    tf.tidy(() => fused.applyGradients(grad()));
    const afterFused = v.dataSync().slice();
    v.assign(start);
    tf.tidy(() => tfjs.applyGradients(grad()));
    expect(scaledMaxDiff(afterFused, v.dataSync())).toBeLessThan(1e-6);
    tf.dispose([v, start]);
    tfjs.dispose();
    fused.dispose();
  });

  it('names the mismatched input when a gradient has the wrong shape', () => {
    tf.setBackend('wasm');
    const v = tf.variable(tf.zeros([4]), true, `adam_bad_${Math.random()}`);
    const optimizer = fusedAdam();
    expect(() => tf.tidy(() => optimizer.applyGradients({ [v.name]: tf.zeros([5]) }))).toThrow(/gradient is float32 \[5\], expected float32 like value \[4\]/);
    tf.dispose(v);
    optimizer.dispose();
  });
});
