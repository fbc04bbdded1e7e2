import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Scatter-add of rows into segments, the gradient of `tf.gather` (embedding lookups), which the
 * wasm backend lacks. Runs in JS directly on the wasm heap: for 64×100 ids into a 10,000×256 table
 * that is 1.6 M additions plus zeroing the 2.56 M-element output, cheaper than any one-hot matMul.
 * Ids outside [0, numSegments) are dropped, as in TensorFlow.
 */
export function unsortedSegmentSumOnHeap(
  backend: BackendWasm,
  x: tf.TensorInfo,
  segmentIds: tf.TensorInfo,
  numSegments: number,
): tf.TensorInfo {
  const numIds = tf.util.sizeFromShape(segmentIds.shape);
  const rowShape = x.shape.slice(segmentIds.shape.length);
  const rowSize = tf.util.sizeFromShape(rowShape);
  if (tf.util.sizeFromShape(x.shape) !== numIds * rowSize) {
    throw new Error(`UnsortedSegmentSum: x shape ${x.shape} must start with segmentIds shape ${segmentIds.shape}`);
  }
  const out = backend.makeOutput([numSegments, ...rowShape], x.dtype);
  // Views are taken after makeOutput: allocating can grow (and detach) the wasm memory.
  const outValues = backend.typedArrayFromHeap(out);
  const xValues = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  outValues.fill(0);
  for (let i = 0; i < numIds; i++) {
    const seg = ids[i]!;
    if (!(seg >= 0 && seg < numSegments)) continue;
    const src = i * rowSize;
    const dst = seg * rowSize;
    for (let k = 0; k < rowSize; k++) outValues[dst + k]! += xValues[src + k]!;
  }
  return out;
}

export const unsortedSegmentSumConfig: tf.KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
    const { numSegments } = attrs as unknown as { numSegments: number };
    if (segmentIds.dtype !== 'int32') throw new Error(`UnsortedSegmentSum: segmentIds must be int32, got ${segmentIds.dtype}`);
    return unsortedSegmentSumOnHeap(backend as BackendWasm, x, segmentIds, numSegments);
  },
};
