import * as tf from '@tensorflow/tfjs';
import type { Rng } from '@filmgenre/core';
import { augmentInto, toUnitFloat, UINT8_TO_UNIT, type ResolvedAugment } from './augment.js';

/** A poster's decoded size: a square side, or width × height for models that keep the 1:2 aspect. */
export type PosterShape = number | { width: number; height: number };

function dims(shape: PosterShape): { width: number; height: number } {
  return typeof shape === 'number' ? { width: shape, height: shape } : shape;
}

function checkPixels(pixels: Uint8Array, shape: PosterShape, what: string): number {
  const { width, height } = dims(shape);
  const per = width * height * 3;
  if (![width, height].every((v) => Number.isInteger(v) && v >= 1)) throw new RangeError(`${what}: size must be positive integers, got ${width}×${height}`);
  if (pixels.length === 0 || pixels.length % per !== 0) {
    throw new RangeError(`${what}: ${pixels.length} bytes is not a whole number of ${width}×${height}×3 images`);
  }
  return pixels.length / per;
}

/** Copies one HWC uint8 image into float32 [0, 1], mirrored left to right. */
function toUnitFloatMirrored(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, width: number, height: number): void {
  const lut = UINT8_TO_UNIT;
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) {
      const s = srcOffset + row + (width - 1 - x) * 3;
      const d = dstOffset + row + x * 3;
      dst[d] = lut[src[s]!]!;
      dst[d + 1] = lut[src[s + 1]!]!;
      dst[d + 2] = lut[src[s + 2]!]!;
    }
  }
}

/** How a poster is written: as it is, mirrored (the frozen features' augmentation) or augmented (CNN training; square posters). */
export interface PosterView {
  flip?: boolean;
  augment?: { options: ResolvedAugment; rng: Rng };
}

/** The one conversion of a decoded poster to model input: HWC uint8 → float32 in [0, 1], at `dstOffset`. */
export function writePoster(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, shape: PosterShape, view: PosterView = {}): void {
  const { width, height } = dims(shape);
  if (view.augment) {
    if (width !== height) throw new RangeError(`augmentation takes square posters, got ${width}×${height}`);
    augmentInto(src, srcOffset, dst, dstOffset, width, view.augment.options, view.augment.rng);
  } else if (view.flip) toUnitFloatMirrored(src, srcOffset, dst, dstOffset, width, height);
  else toUnitFloat(src, srcOffset, dst, dstOffset, width * height * 3);
}

/** Consecutive posters written by writePoster, as the [n, height, width, 3] float32 input tensor. */
export function posterTensor(values: Float32Array, shape: PosterShape): tf.Tensor4D {
  const { width, height } = dims(shape);
  return tf.tensor4d(values, [values.length / (width * height * 3), height, width, 3], 'float32');
}

export interface BatchTensorOptions {
  /** Only these posters, in this order (default: all). */
  indices?: readonly number[];
  /** Mirror every poster left to right (the augmentation that applies to frozen features). */
  flip?: boolean;
}

/**
 * Decoded posters as model input, for training, validation, evaluation and serving alike:
 * consecutive HWC uint8 posters as a float32 [n, height, width, 3] tensor in [0, 1].
 */
export function pixelsToBatchTensor(pixels: Uint8Array, shape: PosterShape, options: BatchTensorOptions = {}): tf.Tensor4D {
  const total = checkPixels(pixels, shape, 'pixelsToBatchTensor');
  const { width, height } = dims(shape);
  const per = width * height * 3;
  const picked = options.indices ?? Array.from({ length: total }, (_, i) => i);
  if (picked.length === 0) throw new RangeError('pixelsToBatchTensor: no images selected');
  const values = new Float32Array(picked.length * per);
  picked.forEach((index, k) => {
    if (!Number.isInteger(index) || index < 0 || index >= total) throw new RangeError(`pixelsToBatchTensor: index ${index} out of [0, ${total})`);
    writePoster(pixels, index * per, values, k * per, shape, { flip: options.flip ?? false });
  });
  return posterTensor(values, shape);
}
