import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FILTER_GRAD_CHUNKS } from '../native/conv.js';
import { configureNativeKernels, nativeRuntime } from '../native/runtime.js';
import { randomArray, rng, scaledMaxDiff, startWasm } from '../test-setup.js';
import { conv2dBackpropFilterViaConv } from './Conv2DBackpropFilter.js';

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
  // Winograd (3×3, stride 1, channels in fours): odd output sizes leave half tiles at the edges.
  { n: 2, h: 7, w: 9, cin: 4, cout: 8, fh: 3, fw: 3, stride: [1, 1], pad: 'same' },
  { n: 1, h: 10, w: 7, cin: 12, cout: 4, fh: 3, fw: 3, stride: [1, 1], pad: 'valid' },
  { n: 3, h: 5, w: 6, cin: 8, cout: 12, fh: 3, fw: 3, stride: [1, 1], pad: 'same' },
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

  it('computes the filter gradient on the native module, by Winograd for 3×3 stride-1 filters with channels in fours', () => {
    tf.setBackend('wasm');
    nativeRuntime()!.clearRunLog();
    convGrads('wasm', fixed[0]!, 1);
    expect(nativeRuntime()!.runLog().flat().map((r) => r.fn)).toContain('conv2d_filter_grad');
    nativeRuntime()!.clearRunLog();
    convGrads('wasm', fixed.at(-1)!, 1);
    // (Its forward convolutions, 864 multiply-adds per pixel, stay on XNNPACK: Conv2D.ts.)
    expect(nativeRuntime()!.runLog().flat().map((r) => r.fn)).toEqual(['winograd_filter_grad']);
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

// cnn-ref's convolutions at their real widths and image sizes (the batch only lengthens the sum
// over pixels): the native filter gradient against the cpu backend at batch 1 (the cpu backend
// takes ~10 s per layer at batch 64) and against the forward-convolution formulation on XNNPACK at
// batch 16, on one and on two threads.
describe('native conv2d filter gradient at cnn-ref sizes', () => {
  const layers: [number, number, number][] = [
    [64, 3, 32], // first layer: 3 channels, the scalar packing path
    [32, 32, 64],
    [16, 64, 128],
  ];
  afterAll(() => {
    configureNativeKernels({ threads: undefined });
  });

  it.each(layers)('%i² pixels, %i → %i channels, 3×3 same', { timeout: 120_000 }, async (size, cin, cout) => {
    const next = rng(size * cin + cout);
    const make = (n: number) => ({
      x: randomArray(n * size * size * cin, next),
      dy: randomArray(n * size * size * cout, next),
    });
    const filterShape: [number, number, number, number] = [3, 3, cin, cout];
    const dw = (backend: string, d: { x: Float32Array; dy: Float32Array }, n: number, viaConv = false) => {
      tf.setBackend(backend);
      return tf.tidy(() => {
        const x = tf.tensor4d(d.x, [n, size, size, cin]);
        const dy = tf.tensor4d(d.dy, [n, size, size, cout]);
        const attrs = { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape };
        const out = viaConv
          ? conv2dBackpropFilterViaConv(x, dy, filterShape, 1, 'same')
          : (tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor);
        return out.dataSync() as Float32Array;
      });
    };
    const small = make(1);
    const big = make(16);
    const reference = dw('cpu', small, 1);
    const xnnpack = dw('wasm', big, 16, true);
    let oneThread: Float32Array | undefined;
    for (const threads of [1, 2]) {
      configureNativeKernels({ threads });
      expect(scaledMaxDiff(dw('wasm', small, 1), reference)).toBeLessThan(1e-5);
      const full = dw('wasm', big, 16);
      expect(scaledMaxDiff(full, xnnpack)).toBeLessThan(1e-4); // sums over up to 65,536 pixels
      if (oneThread) expect(full).toEqual(oneThread); // same chunks, added in the same order: identical
      oneThread = full;
    }
    // Two threads took the fixed chunks (of Winograd tiles where the channels come in fours, of
    // pixels for the RGB layer) from one queue: both some, all of them in total.
    const fn = cin % 4 === 0 ? 'winograd_filter_grad' : 'conv2d_filter_grad';
    // On a busy machine the calling thread can empty the queue of a small layer before the worker
    // wakes up, so the split is checked over a few calls: every call takes all chunks, and in at
    // least one of them both threads took some.
    const splits: number[][] = [];
    for (let call = 0; call < 5 && !splits.some((taken) => taken.every((n) => n > 0)); call++) {
      if (call > 0) dw('wasm', big, 16);
      const lastRun = nativeRuntime()!.runLog().at(-1)!;
      expect(lastRun.map((r) => [r.fn, r.thread, r.args[2]]).sort()).toEqual([
        [fn, 0, 0],
        [fn, 1, 1],
      ]);
      const taken = nativeRuntime()!.unitsTaken(lastRun[0]!.args[1]!);
      expect(taken.reduce((a, b) => a + b)).toBe(FILTER_GRAD_CHUNKS);
      splits.push(taken);
    }
    expect(splits.some((taken) => taken.every((n) => n > 0)), `chunks taken per thread in each call: ${JSON.stringify(splits)}`).toBe(true);
  });
});
