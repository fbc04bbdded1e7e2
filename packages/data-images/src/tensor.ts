import * as tf from '@tensorflow/tfjs';
import { toUnitFloat } from './augment.js';

function checkPixels(pixels: Uint8Array, size: number, what: string): number {
  const per = size * size * 3;
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`${what}: size must be a positive integer, got ${size}`);
  if (pixels.length === 0 || pixels.length % per !== 0) {
    throw new RangeError(`${what}: ${pixels.length} bytes is not a whole number of ${size}×${size}×3 images`);
  }
  return pixels.length / per;
}

/** One decoded poster (HWC uint8) as a float32 [size, size, 3] tensor in [0, 1]; the caller disposes it. */
export function posterToTensor(pixels: Uint8Array, size: number): tf.Tensor3D {
  const n = checkPixels(pixels, size, 'posterToTensor');
  if (n !== 1) throw new RangeError(`posterToTensor: got ${n} images, expected 1 (use pixelsToBatchTensor)`);
  const values = new Float32Array(pixels.length);
  toUnitFloat(pixels, 0, values, 0, pixels.length);
  return tf.tensor3d(values, [size, size, 3], 'float32');
}

/**
 * Consecutive HWC uint8 posters as a float32 [n, size, size, 3] tensor in [0, 1]; with `indices`,
 * only those posters, in that order. Same /255 conversion as posterToTensor and the batch pipeline.
 */
export function pixelsToBatchTensor(pixels: Uint8Array, size: number, indices?: readonly number[]): tf.Tensor4D {
  const total = checkPixels(pixels, size, 'pixelsToBatchTensor');
  const per = size * size * 3;
  const picked = indices ?? Array.from({ length: total }, (_, i) => i);
  if (picked.length === 0) throw new RangeError('pixelsToBatchTensor: no images selected');
  const values = new Float32Array(picked.length * per);
  picked.forEach((index, k) => {
    if (!Number.isInteger(index) || index < 0 || index >= total) throw new RangeError(`pixelsToBatchTensor: index ${index} out of [0, ${total})`);
    toUnitFloat(pixels, index * per, values, k * per, per);
  });
  return tf.tensor4d(values, [picked.length, size, size, 3], 'float32');
}
