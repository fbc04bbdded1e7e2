import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomArray, rng } from '../test-setup.js';
import { findClang } from './build.js';
import { configureNativeKernels, nativeKernelsStatus, nativeRuntime, relaxedSimdSupported } from './runtime.js';

// Both builds where this machine can run them (CI installs clang-16 for the relaxed one).
const relaxedRuns = relaxedSimdSupported() && (findClang()?.major ?? 0) >= 16;
const variants = relaxedRuns ? (['simd128', 'relaxed'] as const) : (['simd128'] as const);

describe('native module builds', () => {
  afterAll(() => configureNativeKernels({ threads: undefined, simd: undefined }));

  it('auto picks the relaxed-SIMD build where it builds and runs, and says why not otherwise', () => {
    configureNativeKernels({ threads: 1, simd: 'auto' });
    expect(nativeRuntime(), nativeKernelsStatus().reason).not.toBeNull();
    const status = nativeKernelsStatus();
    if (relaxedRuns) expect(status.simd).toBe('relaxed');
    else expect(status).toMatchObject({ simd: 'simd128', simdNote: expect.any(String) });
  });

  it('rejects an unknown build name, naming the variable', () => {
    process.env.FILMGENRE_WASM_SIMD = 'avx512';
    try {
      configureNativeKernels({ threads: 2, simd: undefined });
      expect(nativeRuntime()).toBeNull();
      expect(nativeKernelsStatus().reason).toMatch(/FILMGENRE_WASM_SIMD=avx512: use auto, simd128 or relaxed/);
    } finally {
      delete process.env.FILMGENRE_WASM_SIMD;
      configureNativeKernels({ threads: 1 });
    }
  });
});

// The matrix multiply every native kernel is built on, against a float64 reference, on shapes that
// exercise the edges of its 4 × 8 register tile and 256-deep blocking, and every operand layout
// the kernels use (A or B transposed, bias, accumulate).
describe.each(variants)('native gemm, %s build', (variant) => {
  beforeAll(() => configureNativeKernels({ threads: 1, simd: variant }));
  afterAll(() => configureNativeKernels({ threads: undefined, simd: undefined }));

  it('loads the module', () => {
    expect(nativeRuntime(), nativeKernelsStatus().reason).not.toBeNull();
    expect(nativeKernelsStatus().simd).toBe(variant);
  });

  const cases: [number, number, number, boolean, boolean][] = [
    [1, 1, 1, false, false],
    [4, 8, 16, false, false],
    [7, 13, 5, false, false], // partial tiles in both directions
    [97, 33, 300, false, false], // more than one row block and two depth blocks
    [33, 40, 300, true, false], // A transposed (weight gradients: xᵀ·dz)
    [30, 24, 259, true, false], // A transposed, edges on both axes of its 4 × 4 transposes
    [45, 19, 70, false, true], // B transposed (input gradients: dz·Wᵀ)
    [9, 10, 260, true, true],
  ];
  it.each(cases)('%i×%i×%i transposeA=%s transposeB=%s, with bias, then accumulating', (m, n, k, ta, tb) => {
    const rt = nativeRuntime()!;
    const next = rng(m * 1000 + n * 10 + k);
    const a = randomArray(m * k, next); // stored [k, m] when transposed
    const b = randomArray(k * n, next); // stored [n, k] when transposed
    const bias = randomArray(n, next);
    const c0 = randomArray(m * n, next);
    const at = (i: number, p: number) => (ta ? a[p * m + i]! : a[i * k + p]!);
    const bt = (p: number, j: number) => (tb ? b[j * k + p]! : b[p * n + j]!);
    rt.reset();
    const pa = rt.put(a);
    const pb = rt.put(b);
    const pbias = rt.put(bias);
    const pc = rt.put(c0);
    const work = rt.alloc(rt.call('gemm_work_len', n));
    const [aRs, aCs] = ta ? [1, m] : [k, 1];
    const [bRs, bCs] = tb ? [1, k] : [n, 1];
    for (const accumulate of [0, 1]) {
      const before = rt.read(pc, m * n);
      rt.call('gemm_f32', m, n, k, pa, aRs, aCs, pb, bRs, bCs, pc, n, accumulate, accumulate ? 0 : pbias, work);
      const got = rt.read(pc, m * n);
      let worst = 0;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let ref = accumulate ? before[i * n + j]! : bias[j]!;
          for (let p = 0; p < k; p++) ref += at(i, p) * bt(p, j);
          worst = Math.max(worst, Math.abs(got[i * n + j]! - ref));
        }
      }
      expect(worst).toBeLessThan(1e-5 * Math.sqrt(k) + 1e-6);
    }
  });
});
