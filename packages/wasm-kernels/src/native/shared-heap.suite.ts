import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { fusedAdam } from '../fused-adam.js';
import { randomArray, rng, scaledMaxDiff, startWasm } from '../test-setup.js';
import { fusedBiLstm } from './bilstm-op.js';
import { nativeKernelsStatus, nativeRuntime } from './runtime.js';

// With tfjs's threaded wasm build (a shared memory), the native module runs on tfjs's own heap:
// kernels read their inputs and write their outputs where tfjs keeps the tensors. Every native
// kernel is checked here against the cpu backend in that mode, that nothing is copied, and that
// tfjs's heap is left intact.

const t = (shape: number[], next: () => number) => tf.tensor(randomArray(tf.util.sizeFromShape(shape), next), shape);

function onBoth(seed: number, f: (next: () => number) => tf.Tensor | tf.Tensor[]): { wasm: Float32Array[]; cpu: Float32Array[] } {
  const runOn = (backend: string) => {
    tf.setBackend(backend);
    const next = rng(seed);
    return tf.tidy(() => [f(next)].flat().map((r) => r.dataSync() as Float32Array));
  };
  return { wasm: runOn('wasm'), cpu: runOn('cpu') };
}

/** Floats the native runtime copied in or out while `f` ran. */
function copiedDuring(f: () => void): number {
  const before = nativeRuntime()!.copiedFloats;
  f();
  return nativeRuntime()!.copiedFloats - before;
}

/** The checks, on `threads` threads of tfjs's threaded build (one thread: `sharedMemory`, as training asks). */
export function describeSharedHeap(threads: number): void {
  describe(`native kernels on tfjs-backend-wasm heap (threaded build, ${threads} thread${threads > 1 ? 's' : ''})`, () => {
    beforeAll(async () => {
      await startWasm(threads, { sharedMemory: true });
      tf.setBackend('wasm');
    });

    it('runs on the heap tfjs uses', () => {
      expect(nativeRuntime()!.sharesHostHeap).toBe(true);
      expect(nativeKernelsStatus()).toMatchObject({ available: true, threads, sharedHeap: true });
    });

    it('convolutions (Winograd and im2col) and their gradients match cpu; the big tensors are not copied', () => {
      const cases: [number[], number[], number][] = [
        [[2, 16, 16, 32], [3, 3, 32, 32], 1], // Winograd
        [[2, 15, 13, 16], [3, 3, 16, 32], 2], // im2col GEMM
      ];
      for (const [xs, ws, stride] of cases) {
        const { wasm, cpu } = onBoth(3, (next) => {
          const x = t(xs, next);
          const w = t(ws, next);
          const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, 'same');
          const r = t(y.shape, next);
          const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, 'same'), r)))([x, w]);
          return [y, dx!, dw!];
        });
        wasm.forEach((v, i) => expect(scaledMaxDiff(v, cpu[i]!)).toBeLessThan(1e-4));
      }
      tf.setBackend('wasm');
      const x = tf.randomNormal([2, 32, 32, 32]) as tf.Tensor4D;
      const w = tf.randomNormal([3, 3, 32, 32]) as tf.Tensor4D;
      // x, the filter and y stay where tfjs has them (on the module's own memory this copies 140,288 floats).
      expect(copiedDuring(() => tf.dispose(tf.conv2d(x, w, 1, 'same')))).toBe(0);
      tf.dispose([x, w]);
    });

    it('max-pool gradient, bias gradient (column sums) and a large dense product match cpu, copying nothing', () => {
      const { wasm, cpu } = onBoth(5, (next) => {
        const x = tf.tensor4d(Array.from({ length: 4 * 64 * 64 * 6 }, () => Math.floor(next() * 3)), [4, 64, 64, 6]);
        const r = t([4, 32, 32, 6], next);
        const dx = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, 2, 2, 'valid'), r)))(x);
        const bias = tf.sum(t([16, 32, 32, 10], next), [0, 1, 2]);
        const product = tf.matMul(t([8, 2048], next), t([2048, 512], next));
        return [dx, bias, product];
      });
      expect(wasm[0]).toEqual(cpu[0]);
      expect(scaledMaxDiff(wasm[1]!, cpu[1]!)).toBeLessThan(1e-6);
      expect(scaledMaxDiff(wasm[2]!, cpu[2]!)).toBeLessThan(1e-4);
      tf.setBackend('wasm');
      const x = tf.randomNormal([4, 64, 64, 8]) as tf.Tensor4D;
      const dy = tf.randomNormal([4, 32, 32, 8]) as tf.Tensor4D;
      const y = tf.maxPool(x, 2, 2, 'valid');
      const copied = copiedDuring(() => {
        const ctx = { inputs: { dy, input: x, output: y }, attrs: { filterSize: 2, strides: 2, pad: 'valid' } };
        tf.dispose(tf.engine().runKernel(tf.MaxPoolGrad, ctx.inputs, ctx.attrs) as tf.Tensor);
        tf.dispose(tf.sum(x, [0, 1, 2]));
        tf.dispose(tf.matMul(tf.reshape(x, [256, 512]), tf.ones([512, 2048])));
      });
      expect(copied).toBe(0);
      tf.dispose([x, dy, y]);
    });

    it('the fused Adam update matches tf.train.adam on cpu and leaves its inputs untouched', () => {
      const results = ['cpu', 'wasm'].map((backend) => {
        tf.setBackend(backend);
        const next = rng(9);
        const v = tf.variable(t([300, 256], next), true, `shared_heap_adam_${backend}`);
        const optimizer: tf.Optimizer = backend === 'wasm' ? fusedAdam(0.01) : tf.train.adam(0.01);
        for (let step = 0; step < 3; step++) {
          const g = t([300, 256], next);
          const before = v.clone();
          const beforeValues = before.dataSync().slice();
          tf.tidy(() => optimizer.applyGradients({ [v.name]: g }));
          // A clone shares the variable's old buffer: the update must have written elsewhere.
          expect(before.dataSync()).toEqual(beforeValues);
          tf.dispose([g, before]);
        }
        const out = v.dataSync().slice() as Float32Array;
        tf.dispose(v);
        optimizer.dispose();
        return out;
      });
      expect(scaledMaxDiff(results[1]!, results[0]!)).toBeLessThan(1e-6);
    });

    it('the fused BiLSTM matches cpu through its gradient, reading and writing tensors in place', () => {
      const { wasm, cpu } = onBoth(13, (next) => {
        const w = {
          forwardKernel: t([6, 16], next), forwardRecurrent: t([4, 16], next), forwardBias: t([16], next),
          backwardKernel: t([6, 16], next), backwardRecurrent: t([4, 16], next), backwardBias: t([16], next),
        };
        const x = t([3, 5, 6], next) as tf.Tensor3D;
        const r = t([3, 5, 8], next);
        const [y, dx] = [fusedBiLstm(x, null, w, { units: 4, returnSequences: true }), tf.grad((v: tf.Tensor) => tf.sum(tf.mul(fusedBiLstm(v as tf.Tensor3D, null, w, { units: 4, returnSequences: true }), r)))(x)];
        return [y, dx];
      });
      wasm.forEach((v, i) => expect(v).toEqual(cpu[i]));
      // Operands, outputs, the saved activations and the gradients all stay on tfjs's heap; the
      // activations saved on the tape are freed with it.
      tf.setBackend('wasm');
      const next = rng(14);
      const w = {
        forwardKernel: t([32, 64], next), forwardRecurrent: t([16, 64], next), forwardBias: t([64], next),
        backwardKernel: t([32, 64], next), backwardRecurrent: t([16, 64], next), backwardBias: t([64], next),
      };
      const x = t([8, 20, 32], next) as tf.Tensor3D;
      const before = tf.memory();
      const copied = copiedDuring(() => {
        tf.dispose(tf.grads((a: tf.Tensor, k: tf.Tensor) => tf.sum(fusedBiLstm(a as tf.Tensor3D, null, { ...w, forwardKernel: k }, { units: 16, returnSequences: true })))([x, w.forwardKernel]));
        tf.dispose(fusedBiLstm(x, null, w, { units: 16, returnSequences: false }));
      });
      expect(copied).toBe(0);
      expect(tf.memory().numTensors).toBe(before.numTensors);
      expect(tf.memory().numBytes).toBe(before.numBytes);
      tf.dispose([x, ...Object.values(w)]);
    });

    it("leaves tfjs's heap intact: no tensor or byte leaked, later tfjs kernels still compute right", () => {
      tf.setBackend('wasm');
      const before = tf.memory();
      const x = tf.randomNormal([8, 16, 16, 32]) as tf.Tensor4D;
      const w = tf.randomNormal([3, 3, 32, 32]) as tf.Tensor4D;
      for (let i = 0; i < 3; i++) tf.dispose(tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')))([x, w]));
      tf.dispose([x, w]);
      expect(tf.memory().numTensors).toBe(before.numTensors);
      expect(tf.memory().numBytes).toBe(before.numBytes);
      const sum = tf.tidy(() => tf.add(tf.range(0, 1000), tf.fill([1000], 0.5)).sum().dataSync()[0]);
      expect(sum).toBe(499_500 + 500);
    });
  });
}
