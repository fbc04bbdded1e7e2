// Builds the native WebAssembly module from csrc/ (Nx target wasm-kernels:build-wasm), in both
// variants: simd128 (always) and relaxed (relaxed-SIMD fused multiply-add; needs clang ≥ 16).
//   npx tsx packages/wasm-kernels/scripts/build-wasm.ts [--force] [--require]
// Without clang/lld it prints why and exits 0, so that training still runs (on the tfjs paths);
// --require (or CI=true) makes a missing toolchain an error, as CI must build the module. A clang
// too old for the relaxed variant is only reported: the simd128 build serves then.
import { parseCommandLine } from '@filmgenre/core';
import { z } from 'zod';
import { buildNativeModule, NativeBuildError, SIMD_VARIANTS } from '../src/native/build.js';

const options = parseCommandLine(z.object({
  force: z.boolean().default(false).describe('rebuild even when the module is up to date'),
  require: z.boolean().default(false).describe('a missing toolchain is an error (also when CI=true)'),
}), 'build-wasm [--force] [--require]: builds the native WebAssembly module from csrc/');
const { force } = options;
const required = options.require || process.env.CI === 'true';
for (const variant of SIMD_VARIANTS) {
  try {
    const t0 = performance.now();
    const { path, compiled } = buildNativeModule({ force, variant });
    console.log(compiled ? `built ${path} in ${((performance.now() - t0) / 1000).toFixed(1)} s` : `up to date: ${path}`);
  } catch (error) {
    if (!(error instanceof NativeBuildError)) throw error;
    console.error(`[wasm-kernels] ${variant} module not built: ${error.message}`);
    if (variant === 'relaxed' && /needs clang/.test(error.message)) continue;
    if (required) process.exit(1);
    console.error('[wasm-kernels] training falls back to the tfjs paths');
    break;
  }
}
