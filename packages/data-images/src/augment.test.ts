import { describe, expect, it } from 'vitest';
import { augmentInto, exampleRng, resolveAugment, UINT8_TO_UNIT } from './augment.js';

const S = 6;

function image(): Uint8Array {
  const px = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) px[(y * S + x) * 3 + c] = y * 40 + x * 5 + c;
  return px;
}
const at = (a: Float32Array, y: number, x: number, c: number) => a[(y * S + x) * 3 + c]!;

describe('augmentation', () => {
  it('validates options with defaults, and treats false or all-zero as off', () => {
    expect(resolveAugment({})).toEqual({ flip: 0.5, translate: 4, brightness: 0.1, contrast: 0.1 });
    expect(resolveAugment(false)).toBeNull();
    expect(resolveAugment(undefined)).toBeNull();
    expect(resolveAugment({ flip: 0, translate: 0, brightness: 0, contrast: 0 })).toBeNull();
    expect(() => resolveAugment({ flip: -0.1 })).toThrow(/flip/);
    expect(() => resolveAugment({ translate: 1.5 })).toThrow(/translate/);
    expect(() => resolveAugment({ rotate: 3 } as never)).toThrow(/invalid augment options/);
  });

  it('flips exactly when flip is 1 and nothing else is on', () => {
    const src = image();
    const out = new Float32Array(src.length);
    augmentInto(src, 0, out, 0, S, resolveAugment({ flip: 1, translate: 0, brightness: 0, contrast: 0 })!, exampleRng(0, 0, 0));
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) {
      expect(at(out, y, x, c)).toBe(UINT8_TO_UNIT[src[(y * S + (S - 1 - x)) * 3 + c]!]);
    }
  });

  it('shifts with a reflected border, and the shift and brightness are reproducible per (seed, epoch, index)', () => {
    const src = image();
    const aug = resolveAugment({ flip: 0, translate: 2, brightness: 0, contrast: 0 })!;
    const out = new Float32Array(src.length);
    let shifted = 0;
    for (let index = 0; index < 20; index++) {
      augmentInto(src, 0, out, 0, S, aug, exampleRng(1, 0, index));
      // Recover the shift from the top-left pixel: value = 40·y' + 5·x'.
      const v = Math.round(at(out, 2, 2, 0) * 255);
      const sy = Math.floor(v / 40) - 2;
      const sx = (v % 40) / 5 - 2;
      expect(Math.abs(sy) <= 2 && Math.abs(sx) <= 2).toBe(true);
      if (sx !== 0 || sy !== 0) shifted++;
      for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
        const reflect = (i: number) => (i < 0 ? -i : i >= S ? 2 * S - 2 - i : i);
        expect(Math.round(at(out, y, x, 0) * 255)).toBe(reflect(y + sy) * 40 + reflect(x + sx) * 5);
      }
      const again = new Float32Array(src.length);
      augmentInto(src, 0, again, 0, S, aug, exampleRng(1, 0, index));
      expect(again).toEqual(out);
    }
    expect(shifted).toBeGreaterThan(10);
  });

  it('changes brightness by at most the strength and keeps values in [0, 1]', () => {
    const src = image();
    const aug = resolveAugment({ flip: 0, translate: 0, brightness: 0.2, contrast: 0 })!;
    const out = new Float32Array(src.length);
    for (let index = 0; index < 10; index++) {
      augmentInto(src, 0, out, 0, S, aug, exampleRng(2, 3, index));
      // Measured on a mid-grey pixel (136), which no delta within ±0.2 can clamp.
      const delta = at(out, 3, 3, 1) - UINT8_TO_UNIT[src[(3 * S + 3) * 3 + 1]!]!;
      expect(Math.abs(delta)).toBeLessThanOrEqual(0.2 + 1e-6);
      for (let i = 0; i < out.length; i++) {
        const unclamped = UINT8_TO_UNIT[src[i]!]! + delta;
        expect(out[i]).toBeCloseTo(Math.min(1, Math.max(0, unclamped)), 5);
      }
    }
  });

  it('scales contrast around each channel mean', () => {
    // Values 60–182 so that a factor in [0.5, 1.5] never clamps.
    const src = image().map((v, i) => 60 + Math.floor(v / 40) * 20 + (Math.floor(v / 5) % 8) * 4 + (i % 3));
    const aug = resolveAugment({ flip: 0, translate: 0, brightness: 0, contrast: 0.5 })!;
    const out = new Float32Array(src.length);
    augmentInto(src, 0, out, 0, S, aug, exampleRng(0, 0, 1));
    // The channel mean is a fixed point of the contrast change (no clamping happens for this image).
    const mean = (a: ArrayLike<number>, c: number, scale: number) => {
      let s = 0;
      for (let i = c; i < a.length; i += 3) s += a[i]! * scale;
      return s / (S * S);
    };
    for (let c = 0; c < 3; c++) expect(mean(out, c, 1)).toBeCloseTo(mean(src, c, 1 / 255), 5);
    const spreadIn = UINT8_TO_UNIT[src[(S * S - 1) * 3]!]! - UINT8_TO_UNIT[src[0]!]!;
    const spreadOut = out[(S * S - 1) * 3]! - out[0]!;
    expect(spreadOut / spreadIn).not.toBeCloseTo(1, 3);
    expect(Math.abs(spreadOut / spreadIn - 1)).toBeLessThanOrEqual(0.5 + 1e-6);
  });
});
