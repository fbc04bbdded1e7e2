import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * wasm's Slice reads its input with `readSync`, which copies the whole input tensor out of the
 * wasm heap on every call. Unpack (the per-timestep split of every RNN input) slices the same
 * [100, 64, 256] tensor 100 times: 650 MB copied, ≈300 ms per LSTM layer and direction. These
 * versions copy only the selected elements, straight from a view of the heap.
 */
let originalSlice: tf.KernelFunc | undefined;

export function setSliceOriginal(kernelFunc: tf.KernelFunc | undefined): void {
  originalSlice = kernelFunc;
}

/** Copies x[begin : begin + size] into a new wasm tensor. Assumes numeric dtype. */
export function sliceOnHeap(backend: BackendWasm, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
  const out = backend.makeOutput(size.slice(), x.dtype); // copy: callers reuse their size array
  if (tf.util.sizeFromShape(size) === 0) return out;
  // Views after makeOutput: allocating can grow (and detach) the wasm memory.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  const strides = tf.util.computeStrides(x.shape);
  // Merge trailing axes taken whole into one contiguous run.
  let inner = rank - 1;
  let run = rank > 0 ? size[rank - 1]! : 1;
  while (inner > 0 && size[inner] === x.shape[inner] && begin[inner] === 0) {
    inner--;
    run *= size[inner]!;
  }
  const outer = size.slice(0, inner);
  const offsetOf = (idx: number[]) => {
    let off = 0;
    for (let d = 0; d < rank; d++) off += (begin[d]! + (d < idx.length ? idx[d]! : 0)) * (d < rank - 1 ? strides[d]! : 1);
    return off;
  };
  const idx = new Array<number>(outer.length).fill(0);
  const rows = tf.util.sizeFromShape(outer);
  for (let r = 0, o = 0; r < rows; r++, o += run) {
    const s = offsetOf(idx);
    dst.set(src.subarray(s, s + run), o);
    for (let d = outer.length - 1; d >= 0; d--) {
      if (++idx[d]! < outer[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

export const sliceConfig: tf.KernelConfig = {
  kernelName: tf.Slice,
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, attrs, backend } = args;
    const { x } = inputs as { x: tf.TensorInfo };
    if (!originalSlice) throw new Error('Slice wrapper used before registerWasmTrainingKernels()');
    if (x.dtype === 'string') return originalSlice(args);
    const { begin, size } = attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    return sliceOnHeap(backend as BackendWasm, x, begin_, size_);
  },
};

export const unpackConfig: tf.KernelConfig = {
  kernelName: tf.Unpack,
  backendName: 'wasm',
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { value } = inputs as { value: tf.TensorInfo };
    if (value.dtype === 'string') throw new Error('Unpack of strings is not supported on wasm');
    let { axis } = attrs as unknown as { axis: number };
    if (axis < 0) axis += value.shape.length;
    const outShape = value.shape.filter((_, i) => i !== axis);
    const begin = value.shape.map(() => 0);
    const size = value.shape.slice();
    size[axis] = 1;
    const outs: tf.TensorInfo[] = [];
    for (let i = 0; i < value.shape[axis]!; i++) {
      begin[axis] = i;
      const o = sliceOnHeap(backend as BackendWasm, value, begin, size);
      outs.push({ dataId: o.dataId, dtype: o.dtype, shape: outShape });
    }
    return outs;
  },
};

export const splitVConfig: tf.KernelConfig = {
  kernelName: tf.SplitV,
  backendName: 'wasm',
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') throw new Error('SplitV of strings is not supported on wasm');
    const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const $axis = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const splitSizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, $axis);
    const begin = x.shape.map(() => 0);
    const size = x.shape.slice();
    return splitSizes.map((s) => {
      size[$axis] = s;
      const out = sliceOnHeap(backend as BackendWasm, x, begin, size);
      begin[$axis]! += s;
      return out;
    });
  },
};
