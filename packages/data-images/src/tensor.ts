import * as tf from '@tensorflow/tfjs';
import { toUnitFloat, UINT8_TO_UNIT } from './augment.js';

function checkPixels(pixels: Uint8Array, size: number, what: string): number {
  const per = size * size * 3;
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`${what}: size must be a positive integer, got ${size}`);
  if (pixels.length === 0 || pixels.length % per !== 0) {
    throw new RangeError(`${what}: ${pixels.length} bytes is not a whole number of ${size}×${size}×3 images`);
  }
  return pixels.length / per;
}

/** Copies one HWC uint8 image into float32 [0, 1], mirrored left to right. */
function toUnitFloatMirrored(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, size: number): void {
  const lut = UINT8_TO_UNIT;
  for (let y = 0; y < size; y++) {
    const row = y * size * 3;
    for (let x = 0; x < size; x++) {
      const s = srcOffset + row + (size - 1 - x) * 3;
      const d = dstOffset + row + x * 3;
      dst[d] = lut[src[s]!]!;
      dst[d + 1] = lut[src[s + 1]!]!;
      dst[d + 2] = lut[src[s + 2]!]!;
    }
  }
}

/** One decoded poster (HWC uint8) as a float32 [size, size, 3] tensor in [0, 1]; the caller disposes it. */
export function posterToTensor(pixels: Uint8Array, size: number): tf.Tensor3D {
  const n = checkPixels(pixels, size, 'posterToTensor');
  if (n !== 1) throw new RangeError(`posterToTensor: got ${n} images, expected 1 (use pixelsToBatchTensor)`);
  const values = new Float32Array(pixels.length);
  toUnitFloat(pixels, 0, values, 0, pixels.length);
  return tf.tensor3d(values, [size, size, 3], 'float32');
}

export interface BatchTensorOptions {
  /** Only these posters, in this order (default: all). */
  indices?: readonly number[];
  /** Mirror every poster left to right (the augmentation that applies to frozen features). */
  flip?: boolean;
}

/**
 * The one conversion from decoded posters to model input, used by training, validation, evaluation
 * and serving alike: consecutive HWC uint8 posters as a float32 [n, size, size, 3] tensor in [0, 1].
 */
export function pixelsToBatchTensor(pixels: Uint8Array, size: number, options: BatchTensorOptions = {}): tf.Tensor4D {
  const total = checkPixels(pixels, size, 'pixelsToBatchTensor');
  const per = size * size * 3;
  const picked = options.indices ?? Array.from({ length: total }, (_, i) => i);
  if (picked.length === 0) throw new RangeError('pixelsToBatchTensor: no images selected');
  const values = new Float32Array(picked.length * per);
  picked.forEach((index, k) => {
    if (!Number.isInteger(index) || index < 0 || index >= total) throw new RangeError(`pixelsToBatchTensor: index ${index} out of [0, ${total})`);
    if (options.flip) toUnitFloatMirrored(pixels, index * per, values, k * per, size);
    else toUnitFloat(pixels, index * per, values, k * per, per);
  });
  return tf.tensor4d(values, [picked.length, size, size, 3], 'float32');
}
