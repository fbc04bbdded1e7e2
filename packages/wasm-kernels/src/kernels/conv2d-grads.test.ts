import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { randomArray, rng, scaledMaxDiff, startWasm } from '../test-setup.js';

// float32 sums of at most a few thousand products: errors stay near 1e-6 of the values' scale.
const TOLERANCE = 1e-4;

interface Case {
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  fh: number;
  fw: number;
  stride: [number, number];
  pad: 'same' | 'valid';
}

const fixed: Case[] = [
  { n: 2, h: 8, w: 8, cin: 3, cout: 4, fh: 3, fw: 3, stride: [1, 1], pad: 'same' },
  { n: 1, h: 7, w: 9, cin: 1, cout: 2, fh: 3, fw: 3, stride: [2, 2], pad: 'same' },
  { n: 1, h: 7, w: 9, cin: 3, cout: 2, fh: 3, fw: 3, stride: [2, 2], pad: 'valid' },
  { n: 3, h: 6, w: 5, cin: 2, cout: 3, fh: 2, fw: 2, stride: [2, 2], pad: 'same' }, // even filter: asymmetric pad
  { n: 2, h: 9, w: 6, cin: 3, cout: 5, fh: 5, fw: 3, stride: [1, 2], pad: 'valid' },
  { n: 1, h: 5, w: 5, cin: 4, cout: 1, fh: 1, fw: 1, stride: [1, 1], pad: 'valid' },
  { n: 2, h: 10, w: 10, cin: 3, cout: 3, fh: 3, fw: 1, stride: [2, 1], pad: 'same' },
  { n: 1, h: 4, w: 4, cin: 2, cout: 2, fh: 4, fw: 4, stride: [1, 1], pad: 'valid' }, // filter covers the image
];

function randomCases(count: number, seed: number): Case[] {
  const next = rng(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(next() * xs.length)]!;
  return Array.from({ length: count }, () => {
    const fh = pick([1, 2, 3, 5]);
    const fw = pick([1, 2, 3]);
    return {
      n: pick([1, 2, 3]),
      h: fh + Math.floor(next() * 9),
      w: fw + Math.floor(next() * 9),
      cin: pick([1, 2, 3, 8]),
      cout: pick([1, 3, 4]),
      fh,
      fw,
      stride: [pick([1, 2]), pick([1, 2])],
      pad: pick(['same', 'valid'] as const),
    };
  });
}

const cases = [...fixed, ...randomCases(16, 7)];

interface Grads {
  dx: Float32Array;
  dw: Float32Array;
}

function convGrads(backend: string, c: Case, seed: number): Grads {
  tf.setBackend(backend);
  const next = rng(seed);
  return tf.tidy(() => {
    const x = tf.tensor4d(randomArray(c.n * c.h * c.w * c.cin, next), [c.n, c.h, c.w, c.cin]);
    const w = tf.tensor4d(randomArray(c.fh * c.fw * c.cin * c.cout, next), [c.fh, c.fw, c.cin, c.cout]);
    const y = tf.conv2d(x, w, c.stride, c.pad);
    const dy = tf.tensor(randomArray(y.size, next), y.shape);
    const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad))(
      [x, w],
      dy,
    );
    return { dx: dx!.dataSync() as Float32Array, dw: dw!.dataSync() as Float32Array };
  });
}

describe('conv2d gradients on wasm match the cpu backend', () => {
  beforeAll(async () => {
    await startWasm(1);
  });

  it.each(cases.map((c, i) => [i, c] as const))('case %i %o', (i, c) => {
    const ref = convGrads('cpu', c, 100 + i);
    const got = convGrads('wasm', c, 100 + i);
    expect(scaledMaxDiff(got.dx, ref.dx)).toBeLessThan(TOLERANCE);
    expect(scaledMaxDiff(got.dw, ref.dw)).toBeLessThan(TOLERANCE);
  });

  it('uses our kernels (wasm has no Conv2DBackpropFilter of its own)', () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')?.kernelFunc).not.toBe(tf.getKernel('Conv2DBackpropFilter', 'wasm')?.kernelFunc);
  });

  it('leaves no tensors behind', () => {
    tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    convGrads('wasm', fixed[1]!, 1);
    tf.setBackend('wasm');
    expect(tf.memory().numTensors).toBe(before);
  });
});
