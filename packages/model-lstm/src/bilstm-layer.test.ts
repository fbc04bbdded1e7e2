import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '@filmgenre/tf-runtime';
import { configureNativeKernels, nativeKernelsStatus } from '@filmgenre/wasm-kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FastBiLSTM, resolveBiLSTMKernel } from './bilstm-layer.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

describe('FastBiLSTM', () => {
  it('uses the fused native kernel by default where it builds', () => {
    expect(resolveBiLSTMKernel('auto'), nativeKernelsStatus().reason).toBe('fused');
  });

  for (const kernel of ['ops', 'fused'] as const) for (const returnSequences of [true, false]) {
    for (const masked of [false, true]) {
      it(`${kernel}: matches tf.layers.bidirectional(lstm) in outputs and gradients (returnSequences ${returnSequences}, mask ${masked})`, () => {
        const ref = tf.layers.bidirectional({
          layer: tf.layers.lstm({ units: 5, returnSequences, recurrentActivation: 'sigmoid' }) as tf.RNN,
          mergeMode: 'concat',
        });
        const fast = new FastBiLSTM({ units: 5, returnSequences, kernel });
        const x = tf.randomNormal([3, 7, 4], 0, 1, 'float32', 7);
        const mask = masked ? tf.tensor2d([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0]]) : undefined;
        ref.apply(x);
        fast.apply(x);
        fast.setWeights(ref.getWeights()); // same weight order as the Bidirectional wrapper
        const yRef = ref.call(x, { mask }) as tf.Tensor;
        const yFast = fast.call(x, { mask }) as tf.Tensor;
        expect(yFast.shape).toEqual(yRef.shape);
        expect(maxAbsDiff(yRef, yFast)).toBeLessThan(1e-5);

        const weights = tf.randomNormal(yRef.shape, 0, 1, 'float32', 3);
        const loss = (layer: tf.layers.Layer) => () => tf.sum(tf.mul(layer.call(x, { mask }) as tf.Tensor, weights)) as tf.Scalar;
        const vars = (layer: tf.layers.Layer) => layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
        const gRef = Object.values(tf.variableGrads(loss(ref), vars(ref)).grads);
        const gFast = Object.values(tf.variableGrads(loss(fast), vars(fast)).grads);
        expect(gFast).toHaveLength(6);
        gRef.forEach((g, i) => expect(maxAbsDiff(g, gFast[i]!)).toBeLessThan(1e-5));
        const dxRef = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(ref.call(xx, { mask }) as tf.Tensor, weights)))(x);
        const dxFast = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(fast.call(xx, { mask }) as tf.Tensor, weights)))(x);
        expect(maxAbsDiff(dxRef, dxFast)).toBeLessThan(1e-5);
        tf.dispose([x, weights, yRef, yFast, dxRef, dxFast, ...gRef, ...gFast, ...(mask ? [mask] : [])]);
        ref.dispose();
        fast.dispose();
      });
    }
  }

  it.each(['ops', 'fused'] as const)('%s: does not leak tensors in inference or training steps', (kernel) => {
    const fast = new FastBiLSTM({ units: 4, returnSequences: true, kernel });
    const x = tf.randomNormal([2, 6, 3]);
    const mask = tf.tensor2d([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]);
    fast.apply(x);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      fast.call(x, { mask });
    });
    expect(tf.memory().numTensors).toBe(before);
    const opt = tf.train.adam(0.01);
    const step = () => opt.minimize(() => tf.sum(fast.call(x, { mask }) as tf.Tensor) as tf.Scalar);
    step(); // creates the optimizer's slots
    const afterFirst = tf.memory().numTensors;
    step();
    step();
    expect(tf.memory().numTensors).toBe(afterFirst);
    opt.dispose();
    tf.dispose([x, mask]);
    fast.dispose();
  });

  it('is not saved with its kernel choice: a fused layer reloads as the same function', () => {
    const fast = new FastBiLSTM({ units: 3, kernel: 'fused' });
    expect(fast.getConfig()).not.toHaveProperty('kernel');
  });
});

// lstm-ref's two layers at full size (batch 64, 100 steps, 256 → 64 with sequences, 128 → 32),
// rows of 1 to 100 valid steps: the fused kernel against the layer's tfjs-op path on the wasm
// backend, over the whole batch, on one and on two threads (@filmgenre/wasm-kernels checks the
// fused kernel against tf.layers on the cpu backend at the same sizes).
describe('FastBiLSTM at real sizes on wasm: fused kernel vs tfjs ops', () => {
  beforeAll(async () => {
    await initBackend('wasm', { wasmThreads: 1 });
  });
  afterAll(async () => {
    configureNativeKernels({ threads: undefined });
    await tf.setBackend('cpu');
  });

  const cases = [
    { inputDim: 256, units: 64, returnSequences: true },
    { inputDim: 128, units: 32, returnSequences: false },
  ];
  it.each(cases)('%j, 1 and 2 threads', { timeout: 180_000 }, ({ inputDim, units, returnSequences }) => {
    const [batch, steps] = [64, 100];
    const lengths = Array.from({ length: batch }, (_, b) => (b === 0 ? steps : 1 + ((b * 37) % steps)));
    const mask = tf.tensor2d(Array.from({ length: batch * steps }, (_, i) => (i % steps < lengths[Math.floor(i / steps)]! ? 1 : 0)), [batch, steps]);
    const x = tf.variable(tf.randomNormal([batch, steps, inputDim], 0, 1, 'float32', 1));
    const dy = tf.randomNormal(returnSequences ? [batch, steps, 2 * units] : [batch, 2 * units], 0, 1, 'float32', 2);
    const run = (kernel: 'ops' | 'fused') => {
      const layer = new FastBiLSTM({ units, returnSequences, kernel });
      layer.build([batch, steps, inputDim]);
      tf.tidy(() => layer.setWeights(layer.weights.map((w, i) => {
        const shape = w.shape as number[];
        return tf.randomNormal(shape, 0, 1.5 / Math.sqrt(shape[0]!), 'float32', 10 + i);
      })));
      const vars = [x, ...layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val)];
      const y = tf.tidy(() => layer.call(x, { mask }) as tf.Tensor);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.call(x, { mask }) as tf.Tensor, dy)) as tf.Scalar, vars);
      const out = [y, ...vars.map((v) => grads[v.name]!)];
      for (const w of layer.weights) w.dispose();
      return out;
    };
    const reference = run('ops');
    for (const threads of [1, 2]) {
      configureNativeKernels({ threads });
      const fused = run('fused');
      expect(nativeKernelsStatus().threads).toBe(threads);
      // Outputs, dx and the six weight gradients; relative to each one's scale (sums over 6,400 rows).
      fused.forEach((t, i) => {
        const scale = tf.tidy(() => tf.max(tf.abs(reference[i]!)).dataSync()[0]!);
        expect(maxAbsDiff(t, reference[i]!) / (1 + scale), `tensor ${i}`).toBeLessThan(2e-5);
      });
      tf.dispose(fused);
    }
    tf.dispose([...reference, x, dy, mask]);
  });
});
