import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { conv2dForwardNative, usesWinograd, type ConvGeometry } from '../native/conv.js';
import { configureNativeKernels, nativeRuntime } from '../native/runtime.js';
import { randomArray, rng, scaledMaxDiff, startWasm } from '../test-setup.js';
import { NATIVE_CONV_MIN_MACS_PER_PIXEL } from './Conv2D.js';
import { convGeometry } from './conv_util.js';

interface Case {
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  fh: number;
  fw: number;
  stride: [number, number];
  dilation: [number, number];
  pad: 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
}

// Odd sizes, strides, dilations, 'same' and 'valid', channel counts that are and are not multiples
// of the SIMD width and of the 8-column register tile, and a depth beyond one 512-row block.
const cases: Case[] = [
  { n: 2, h: 7, w: 9, cin: 3, cout: 5, fh: 3, fw: 3, stride: [1, 1], dilation: [1, 1], pad: 'same' },
  { n: 1, h: 8, w: 6, cin: 8, cout: 16, fh: 3, fw: 3, stride: [2, 2], dilation: [1, 1], pad: 'same' },
  { n: 3, h: 9, w: 9, cin: 13, cout: 9, fh: 2, fw: 3, stride: [1, 2], dilation: [1, 1], pad: 'valid' },
  { n: 1, h: 11, w: 10, cin: 16, cout: 8, fh: 3, fw: 3, stride: [1, 1], dilation: [2, 2], pad: 'same' },
  { n: 2, h: 6, w: 6, cin: 72, cout: 33, fh: 3, fw: 3, stride: [1, 1], dilation: [1, 1], pad: 'same' }, // depth 648: two blocks
  { n: 1, h: 5, w: 5, cin: 1, cout: 1, fh: 1, fw: 1, stride: [1, 1], dilation: [1, 1], pad: 'valid' },
  // Winograd F(2×2, 3×3): odd output sizes (half tiles at the right and bottom), 'valid', uneven
  // explicit padding (as Conv2DBackpropInput passes), and more than one block of tiles.
  { n: 2, h: 7, w: 9, cin: 8, cout: 12, fh: 3, fw: 3, stride: [1, 1], dilation: [1, 1], pad: 'same' },
  { n: 1, h: 10, w: 7, cin: 16, cout: 8, fh: 3, fw: 3, stride: [1, 1], dilation: [1, 1], pad: 'valid' },
  { n: 2, h: 6, w: 5, cin: 4, cout: 20, fh: 3, fw: 3, stride: [1, 1], dilation: [1, 1], pad: [[0, 0], [2, 0], [0, 1], [0, 0]] },
  { n: 3, h: 20, w: 18, cin: 36, cout: 44, fh: 3, fw: 3, stride: [1, 1], dilation: [1, 1], pad: 'same' },
];

function geometry(c: Case): ConvGeometry {
  return convGeometry(tf.backend_util.computeConv2DInfo([c.n, c.h, c.w, c.cin], [c.fh, c.fw, c.cin, c.cout], c.stride, c.dilation, c.pad));
}

function cpuConv(c: Case, x: Float32Array, w: Float32Array): Float32Array {
  tf.setBackend('cpu');
  return tf.tidy(() => tf.conv2d(tf.tensor4d(x, [c.n, c.h, c.w, c.cin]), tf.tensor4d(w, [c.fh, c.fw, c.cin, c.cout]), c.stride, c.pad, 'NHWC', c.dilation).dataSync() as Float32Array);
}

describe('native forward convolution', () => {
  beforeAll(async () => {
    await startWasm(1);
  });
  afterAll(() => configureNativeKernels({ threads: undefined }));

  it.each(cases.map((c, i) => [i, c] as const))('case %i %o matches the cpu backend', (i, c) => {
    const next = rng(500 + i);
    const x = randomArray(c.n * c.h * c.w * c.cin, next);
    const w = randomArray(c.fh * c.fw * c.cin * c.cout, next);
    const got = conv2dForwardNative(x, w, geometry(c));
    expect(got).not.toBeNull();
    expect(scaledMaxDiff(got!, cpuConv(c, x, w))).toBeLessThan(1e-5);
  });

  it('runs the 3×3 stride-1 cases with channels in fours by Winograd, the others by the im2col GEMM', () => {
    expect(cases.map((c) => usesWinograd(geometry(c)))).toEqual([false, false, false, false, false, false, true, true, true, true]);
  });

  it('gives the same output on one and two threads, both taking blocks of 2×2 tiles from one queue (cnn-ref layer 4 at batch 8, Winograd)', () => {
    const c: Case = { n: 8, h: 32, w: 32, cin: 64, cout: 64, fh: 3, fw: 3, stride: [1, 1], dilation: [1, 1], pad: 'same' };
    const next = rng(99);
    const x = randomArray(c.n * c.h * c.w * c.cin, next);
    const w = randomArray(c.fh * c.fw * c.cin * c.cout, next);
    configureNativeKernels({ threads: 1 });
    const one = conv2dForwardNative(x, w, geometry(c))!;
    configureNativeKernels({ threads: 2 });
    const two = conv2dForwardNative(x, w, geometry(c))!;
    expect(two).toEqual(one);
    const run = nativeRuntime()!.runLog().at(-1)!;
    expect(usesWinograd(geometry(c))).toBe(true);
    // Each thread ran one job on the same queue (args[1]) and took blocks of 64 tiles from it: both
    // took some, and together all 2048 / 64 = 32, none twice (the output above would differ).
    expect(run.map((r) => [r.fn, r.thread, r.args[2]]).sort()).toEqual([
      ['winograd_forward', 0, 0],
      ['winograd_forward', 1, 1],
    ]);
    expect(new Set(run.map((r) => r.args[1])).size).toBe(1);
    const taken = nativeRuntime()!.unitsTaken(run[0]!.args[1]!);
    expect(taken.every((n) => n > 0)).toBe(true);
    expect(taken.reduce((a, b) => a + b)).toBe(32);
    // Against the cpu backend on one image (the cpu backend is slow at this size).
    expect(scaledMaxDiff(one.subarray(0, 32 * 32 * 64), cpuConv({ ...c, n: 1 }, x.subarray(0, 32 * 32 * 64), w))).toBeLessThan(1e-5);
  });

  it('tf.conv2d on wasm sends spatial convolutions with enough work per pixel to it, whatever the batch; an image gives the same output alone as in a batch', () => {
    configureNativeKernels({ threads: 1 });
    tf.setBackend('wasm');
    const next = rng(7);
    const x = randomArray(4 * 12 * 12 * 16, next);
    const w = randomArray(3 * 3 * 16 * 32, next);
    expect(3 * 3 * 16 * 32).toBeGreaterThanOrEqual(NATIVE_CONV_MIN_MACS_PER_PIXEL);
    const conv = (n: number, filter: Float32Array, fh: number, cout: number) =>
      tf.tidy(() => tf.conv2d(tf.tensor4d(x.subarray(0, n * 12 * 12 * 16), [n, 12, 12, 16]), tf.tensor4d(filter, [fh, fh, 16, cout]), 1, 'same').dataSync() as Float32Array);
    nativeRuntime()!.clearRunLog();
    const batch = conv(4, w, 3, 32);
    const alone = conv(1, w, 3, 32);
    expect(nativeRuntime()!.runLog().flat().map((r) => r.fn)).toEqual(['winograd_forward', 'winograd_forward']);
    expect(alone).toEqual(batch.subarray(0, 12 * 12 * 32)); // bit for bit
    const c: Case = { n: 4, h: 12, w: 12, cin: 16, cout: 32, fh: 3, fw: 3, stride: [1, 1], dilation: [1, 1], pad: 'same' };
    expect(scaledMaxDiff(batch, cpuConv(c, x, w))).toBeLessThan(1e-5);
    // 1×1 filters (dense projections, as in the sentence encoder) and little work per pixel stay on XNNPACK.
    conv(4, w.subarray(0, 16 * 32), 1, 32);
    conv(4, w.subarray(0, 9 * 16 * 2), 3, 2);
    expect(nativeRuntime()!.runLog()).toHaveLength(2);
  });

  it('inference (fused bias and activation) runs the same native convolution, then bias and ReLU; other activations stay on XNNPACK', () => {
    configureNativeKernels({ threads: 1 });
    const next = rng(21);
    const x = randomArray(2 * 10 * 10 * 16, next);
    const w = randomArray(3 * 3 * 16 * 32, next);
    const bias = randomArray(32, next);
    const fused = (backend: string, activation: 'relu' | 'linear' | 'sigmoid', withBias = true) => {
      tf.setBackend(backend);
      return tf.tidy(() => {
        const filter = tf.tensor4d(w, [3, 3, 16, 32]);
        const input = tf.tensor4d(x, [2, 10, 10, 16]);
        return tf.fused.conv2d({ x: input, filter, strides: 1, pad: 'same', bias: withBias ? tf.tensor1d(bias) : undefined, activation }).dataSync() as Float32Array;
      });
    };
    for (const [activation, withBias] of [['relu', true], ['linear', true], ['relu', false]] as const) {
      nativeRuntime()!.clearRunLog();
      const got = fused('wasm', activation, withBias);
      expect(nativeRuntime()!.runLog().flat().map((r) => r.fn)).toEqual(['winograd_forward']);
      expect(scaledMaxDiff(got, fused('cpu', activation, withBias))).toBeLessThan(1e-5);
    }
    // Bit for bit what training's unfused Conv2D computes before its bias and activation.
    tf.setBackend('wasm');
    const unfused = tf.tidy(() => tf.conv2d(tf.tensor4d(x, [2, 10, 10, 16]), tf.tensor4d(w, [3, 3, 16, 32]), 1, 'same').dataSync() as Float32Array);
    expect(fused('wasm', 'linear', false)).toEqual(unfused);
    nativeRuntime()!.clearRunLog();
    expect(scaledMaxDiff(fused('wasm', 'sigmoid'), fused('cpu', 'sigmoid'))).toBeLessThan(1e-5);
    expect(nativeRuntime()!.runLog()).toHaveLength(0);
  });
});
