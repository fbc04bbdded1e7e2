import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { matMulNative } from '../native/matmul.js';
import { nativeRuntime } from '../native/runtime.js';

/**
 * Products whose op(B) has at least this many entries (k·n: a dense layer's weight matrix, as in
 * the CNNs' 8192 → 256 layer, or its transpose in the input gradient) run on the native module's
 * GEMM: XNNPACK re-packs such a weight matrix on every call and ran the 8192 → 256 layer at
 * ≈ 3–4 GFLOP/s. The choice depends on k and n only, never on m (the batch), so a row's result does
 * not depend on what else was in the batch.
 */
export const NATIVE_MATMUL_MIN_WEIGHTS = 1 << 20;

/**
 * wasm's BatchMatMul with transposeA / transposeB runs 7–9× slower than without (measured: dense
 * 8192→256 gradients at batch 64, 225 ms vs 31 ms). Gradients of every dense / LSTM layer use those
 * flags, so this wrapper materialises the transposes and calls wasm's own kernel without them,
 * picking whichever of C = op(A)·op(B) or C = (op(B)ᵀ·op(A)ᵀ)ᵀ copies fewer elements.
 */
let original: tf.KernelFunc | undefined;

export function setBatchMatMulOriginal(kernelFunc: tf.KernelFunc | undefined): void {
  original = kernelFunc;
}

function swapLast2(x: tf.Tensor): tf.Tensor {
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1]!, perm[r - 2]!];
  return tf.transpose(x, perm);
}

// Through the engine (not original() directly) so the output is a tracked Tensor inside tidy;
// without transpose flags the call lands in wasm's own kernel.
function plain(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, false, false);
}

/** A single (unbatched) float32 product with k·n ≥ NATIVE_MATMUL_MIN_WEIGHTS on the native GEMM, else null. */
function matMulOnNative(backend: BackendWasm, a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): tf.TensorInfo | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  // Matrices, or a batch of one (the kernel receives either).
  const matrix = (t: tf.TensorInfo) => t.shape.length === 2 || (t.shape.length === 3 && t.shape[0] === 1);
  if (!matrix(a) || !matrix(b)) return null;
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [m, k] = transposeA ? [ac, ar] : [ar, ac];
  const n = transposeB ? br : bc;
  if (k * n < NATIVE_MATMUL_MIN_WEIGHTS || !nativeRuntime()) return null;
  // The output first: allocating may grow the wasm heap, which detaches earlier views of it.
  const out = backend.makeOutput(a.shape.length === 3 ? [1, m, n] : [m, n], 'float32');
  const target = backend.typedArrayFromHeap(out) as Float32Array;
  matMulNative(backend.typedArrayFromHeap(a) as Float32Array, backend.typedArrayFromHeap(b) as Float32Array, { m, n, k, transposeA, transposeB }, target);
  return out;
}

export const batchMatMulConfig: tf.KernelConfig = {
  kernelName: tf.BatchMatMul,
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, attrs } = args;
    const { a, b } = inputs as { a: tf.Tensor; b: tf.Tensor };
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (!original) throw new Error('BatchMatMul wrapper used before registerWasmTrainingKernels()');
    const native = matMulOnNative(args.backend as BackendWasm, a, b, transposeA, transposeB);
    if (native) return native;
    if ((!transposeA && !transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') return original(args);
    const m = transposeA ? a.shape[a.rank - 1]! : a.shape[a.rank - 2]!;
    const n = transposeB ? b.shape[b.rank - 2]! : b.shape[b.rank - 1]!;
    const batch = Math.max(tf.util.sizeFromShape(a.shape.slice(0, -2)), tf.util.sizeFromShape(b.shape.slice(0, -2)));
    const directCopies = (transposeA ? a.size : 0) + (transposeB ? b.size : 0);
    const swappedCopies = (transposeA ? 0 : a.size) + (transposeB ? 0 : b.size) + batch * m * n;
    return tf.tidy(() => {
      if (directCopies <= swappedCopies) {
        return plain(transposeA ? swapLast2(a) : a, transposeB ? swapLast2(b) : b);
      }
      // Cᵀ = op(B)ᵀ · op(A)ᵀ, where op(B)ᵀ is B itself when transposeB (no copy), likewise A.
      const bt = transposeB ? b : swapLast2(b);
      const at = transposeA ? a : swapLast2(a);
      return swapLast2(plain(bt, at));
    });
  },
};
