import * as tf from '@tensorflow/tfjs';

/**
 * Sums over leading axes (every conv / dense bias gradient: dy summed over batch, height, width)
 * as one matMul with a row of ones: wasm's own Sum transposes the reduced axes to the end first and
 * ran 10× slower (62 ms vs 6 ms for 64×64×64×32). Other reductions go to wasm's kernel.
 */
let original: tf.KernelFunc | undefined;

export function setSumOriginal(kernelFunc: tf.KernelFunc | undefined): void {
  original = kernelFunc;
}

export const sumConfig: tf.KernelConfig = {
  kernelName: tf.Sum,
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, attrs } = args;
    const { x } = inputs as { x: tf.Tensor };
    const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
    if (!original) throw new Error('Sum wrapper used before registerWasmTrainingKernels()');
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    const leading = axes.length > 0 && axes.length < x.rank && axes.every((v, i) => v === i);
    if (!leading || x.dtype !== 'float32') return original(args);
    const rows = tf.util.sizeFromShape(x.shape.slice(0, axes.length));
    const rest = x.shape.slice(axes.length);
    const outShape = keepDims ? [...axes.map(() => 1), ...rest] : rest;
    return tf.tidy(() => {
      const ones = tf.ones([1, rows]);
      return tf.reshape(tf.matMul(ones, tf.reshape(x, [rows, tf.util.sizeFromShape(rest)])), outShape);
    });
  },
};
