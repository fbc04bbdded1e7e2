import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * wasm's GatherV2 computes every output element's source index separately: an embedding lookup of
 * 64×100 ids into a 10,000×256 table (1.6 M floats) took ≈120 ms, most of lstm-ref's non-LSTM
 * time. Gathered slices are contiguous runs of `sliceSize` elements, so this copies them as runs,
 * straight between views of the heap (≈1 ms for the same lookup).
 */
let originalGather: tf.KernelFunc | undefined;

export function setGatherV2Original(kernelFunc: tf.KernelFunc | undefined): void {
  originalGather = kernelFunc;
}

export function gatherOnHeap(backend: BackendWasm, x: tf.TensorInfo, indices: tf.TensorInfo, axis: number, batchDims: number): tf.TensorInfo {
  const parsedAxis = tf.util.parseAxisParam(axis, x.shape)[0]!;
  const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x as tf.Tensor, indices as tf.Tensor, parsedAxis, batchDims);
  const out = backend.makeOutput(info.outputShape, x.dtype);
  const numIndices = tf.util.sizeFromShape(indices.shape);
  if (tf.util.sizeFromShape(x.shape) === 0 || numIndices === 0) return out;
  // Views after makeOutput: allocating can grow (and detach) the wasm memory.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const ids = backend.typedArrayFromHeap(indices);
  const { batchSize, outerSize, dimSize, sliceSize } = info;
  const perBatch = numIndices / batchSize;
  for (let i = 0; i < numIndices; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < dimSize)) throw new Error(`GatherV2: the index value ${id} is not in [0, ${dimSize - 1}]`);
  }
  let o = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let outer = 0; outer < outerSize; outer++) {
      const base = (b * outerSize + outer) * dimSize * sliceSize;
      for (let i = 0; i < perBatch; i++, o += sliceSize) {
        const s = base + ids[b * perBatch + i]! * sliceSize;
        dst.set(src.subarray(s, s + sliceSize), o);
      }
    }
  }
  return out;
}

export const gatherV2Config: tf.KernelConfig = {
  kernelName: tf.GatherV2,
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, attrs, backend } = args;
    const { x, indices } = inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = attrs as unknown as { axis: number; batchDims: number };
    if (!originalGather) throw new Error('GatherV2 wrapper used before registerWasmTrainingKernels()');
    if (x.dtype === 'string' || indices.dtype !== 'int32') return originalGather(args);
    return gatherOnHeap(backend as BackendWasm, x, indices, axis, batchDims);
  },
};
