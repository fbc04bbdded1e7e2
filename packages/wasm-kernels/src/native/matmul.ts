import { nativeRuntime } from './runtime.js';

/** A matrix product C [m × n] = op(A) · op(B), op = transpose when the flag is set. */
export interface MatMulShape {
  m: number;
  n: number;
  k: number;
  transposeA: boolean;
  transposeB: boolean;
}

/**
 * C = op(A)·op(B) on the native module's GEMM (`csrc/gemm.c`), the transposes read through strides
 * (nothing is transposed in memory). Threads split the columns of C in multiples of the register
 * tile's 8, so each column is computed the same way on any thread count, and every row the same way
 * whatever the other rows are. A ([m, k], or [k, m] when transposeA) and B ([k, n], or [n, k]) are
 * copied in; C is written into `out` when given. Null when the native module is unavailable.
 */
export function matMulNative(a: ArrayLike<number>, b: ArrayLike<number>, s: MatMulShape, out?: Float32Array): Float32Array | null {
  const rt = nativeRuntime();
  if (!rt) return null;
  const { m, n, k } = s;
  rt.reset();
  const pa = rt.put(a);
  const pb = rt.put(b);
  const pc = rt.place(out, m * n);
  const [aRs, aCs] = s.transposeA ? [1, m] : [k, 1];
  const [bRs, bCs] = s.transposeB ? [1, k] : [n, 1];
  // Whole 8-column panels per thread.
  rt.run(rt.jobsByRange(Math.ceil(n / 8), (p0, p1) => {
    const j0 = p0 * 8;
    const j1 = Math.min(n, p1 * 8);
    const work = rt.alloc(rt.call('gemm_work_len', j1 - j0));
    const args = [m, j1 - j0, k, pa, aRs, aCs, pb + j0 * bCs * 4, bRs, bCs, pc + j0 * 4, n, 0, 0, work];
    return { fn: 'gemm_f32', args, label: `matrix product, columns ${j0}-${j1}` };
  }));
  return rt.read(pc, m * n, out);
}
