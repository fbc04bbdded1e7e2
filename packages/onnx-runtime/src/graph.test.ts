import { describe, expect, it } from 'vitest';
import { OnnxGraph } from './graph.js';
import { OnnxSession, onnxRuntimeUnavailable, resolveEncoderRuntime } from './session.js';

/** 3×3 'same' convolution of one NCHW image, then ReLU6, then the mean over space: the reference. */
function reference(x: Float32Array, w: Float32Array, b: Float32Array, c: number, f: number, h: number, wd: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < f; o++) {
    let sum = 0;
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < wd; xx++) {
        let acc = b[o]!;
        for (let i = 0; i < c; i++) {
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const yy = y + ky - 1;
              const xs = xx + kx - 1;
              if (yy < 0 || yy >= h || xs < 0 || xs >= wd) continue;
              acc += x[(i * h + yy) * wd + xs]! * w[((o * c + i) * 3 + ky) * 3 + kx]!;
            }
          }
        }
        sum += Math.min(6, Math.max(0, acc));
      }
    }
    out.push(sum / (h * wd));
  }
  return out;
}

describe('OnnxGraph on onnxruntime-node', () => {
  it('loads here (the CPU build ships inside the npm package)', () => {
    expect(onnxRuntimeUnavailable()).toBeUndefined();
    expect(resolveEncoderRuntime('auto')).toBe('onnxruntime');
    expect(resolveEncoderRuntime('tfjs')).toBe('tfjs');
  });

  it('computes a convolution, ReLU6 and pooling as the reference does, for any batch size', async () => {
    const [c, f, h, wd] = [3, 4, 5, 6];
    const random = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7919 + i * 104729) * 2);
    const w = random(f * c * 9, 1);
    const b = random(f, 2);
    const g = new OnnxGraph('conv-relu6-pool');
    const x = g.input('x', 'float32', ['n', c, h, wd]);
    const conv = g.apply('Conv', [x, g.constant('w', w, [f, c, 3, 3]), g.constant('b', b, [f])], { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } });
    const clipped = g.apply('Clip', [conv, g.scalar('zero', 0), g.scalar('six', 6)]);
    const pooled = g.apply('GlobalAveragePool', [clipped]);
    g.output(g.apply('Flatten', [pooled]), 'y', 'float32', ['n', f]);
    expect(g.opCounts()).toEqual({ Conv: 1, Clip: 1, GlobalAveragePool: 1, Flatten: 1, Identity: 1 });
    const session = await OnnxSession.create(g.encode(), { threads: 2 });
    try {
      const images = [random(c * h * wd, 3), random(c * h * wd, 4)];
      const batch = new Float32Array(2 * c * h * wd);
      batch.set(images[0]!, 0);
      batch.set(images[1]!, c * h * wd);
      const { y } = await session.run({ x: { type: 'float32', data: batch, dims: [2, c, h, wd] } });
      expect(y!.dims).toEqual([2, f]);
      const expected = images.flatMap((img) => reference(img, w, b, c, f, h, wd));
      Array.from(y!.data).forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
      // Some outputs must sit inside (0, 6), or the check above would not test ReLU6's two ends.
      expect(expected.some((v) => v > 0.1 && v < 5.9)).toBe(true);
    } finally {
      await session.release();
    }
  });

  it('refuses a node that reads an undefined value and a constant of the wrong size, naming them', () => {
    const g = new OnnxGraph('bad');
    expect(() => g.apply('Relu', ['nowhere'])).toThrow(/Relu 'Relu' reads 'nowhere'/);
    expect(() => g.constant('w', new Float32Array(5), [2, 3])).toThrow(/constant 'w' has 5 values for dims \[2, 3\]/);
  });
});
