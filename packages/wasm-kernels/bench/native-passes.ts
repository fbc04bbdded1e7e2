// Time of the native module's passes alone (no tfjs around them) at the reference models' sizes,
// batch 64: the fused BiLSTM's forward and backward passes (lstm-ref's two layers) and the
// convolutions' forward pass and filter gradient (cnn-ref's 3×3 layers). Best of N calls; one JSON
// line each, with GFLOP/s (convolutions counted as direct convolution: Winograd does fewer
// multiply-adds for the same result).
//   FILMGENRE_WASM_THREADS=1 npx tsx packages/wasm-kernels/bench/native-passes.ts [--repeats 3]
import { parseCommandLine } from '@filmgenre/core';
import { z } from 'zod';
import { conv2dFilterGradNative, conv2dForwardNative, usesWinograd, type ConvGeometry } from '../src/native/conv.js';
import { biLstmBackward, biLstmForward } from '../src/native/lstm.js';
import { nativeKernelsStatus, nativeRuntime } from '../src/native/runtime.js';

const { repeats } = parseCommandLine(z.object({ repeats: z.int().positive().default(3).describe('calls per pass; the best is reported') }),
  'native-passes [--repeats N]: time of the native module\'s passes alone, one JSON line each');
const batch = 64;

function random(n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (Math.random() - 0.5) * scale;
  return out;
}

function best(f: () => void): number {
  let ms = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    f();
    ms = Math.min(ms, performance.now() - t0);
  }
  return ms;
}

const rt = nativeRuntime();
if (!rt) throw new Error(`native kernels unavailable: ${nativeKernelsStatus().reason}`);
const common = { threads: rt.threads, simd: nativeKernelsStatus().simd, batch };

for (const [inputDim, units] of [[256, 64], [128, 32]] as const) {
  const steps = 100;
  const g = 4 * units;
  const shape = { batch, steps, inputDim, units };
  const x = random(batch * steps * inputDim, 0.2);
  const weights = { kernel: [random(inputDim * g, 0.2), random(inputDim * g, 0.2)], recurrent: [random(units * g, 0.2), random(units * g, 0.2)], bias: [random(g), random(g)] } as const;
  const mask = new Float32Array(batch * steps).fill(1);
  const forward = biLstmForward(shape, x, weights, mask, { keepActivations: true }) as Parameters<typeof biLstmBackward>[4];
  const dy = { sequence: random(batch * steps * 2 * units) };
  const forwardMs = best(() => biLstmForward(shape, x, weights, mask, { keepActivations: true }));
  const backwardMs = best(() => biLstmBackward(shape, x, weights, mask, forward, dy));
  // Per direction: input projection and recurrence forward; backward twice that (dW, dx; dR, dh).
  const forwardFlop = 2 * 2 * batch * steps * (inputDim + units) * g;
  const backwardFlop = 2 * forwardFlop;
  console.log(JSON.stringify({ pass: 'bilstm', inputDim, units, steps, ...common, forwardMs: +forwardMs.toFixed(1), forwardGflops: +(forwardFlop / forwardMs / 1e6).toFixed(1), backwardMs: +backwardMs.toFixed(1), backwardGflops: +(backwardFlop / backwardMs / 1e6).toFixed(1) }));
}

for (const [size, inChannels, outChannels] of [[64, 32, 32], [32, 32, 64], [32, 64, 64], [16, 64, 128], [16, 128, 128]] as const) {
  const geometry: ConvGeometry = {
    batch, inHeight: size, inWidth: size, inChannels, outHeight: size, outWidth: size, outChannels,
    filterHeight: 3, filterWidth: 3, strideHeight: 1, strideWidth: 1, dilationHeight: 1, dilationWidth: 1, padTop: 1, padLeft: 1,
  };
  const x = random(batch * size * size * inChannels);
  const dy = random(batch * size * size * outChannels);
  const w = random(9 * inChannels * outChannels, 0.2);
  const forwardMs = best(() => conv2dForwardNative(x, w, geometry));
  const filterGradMs = best(() => conv2dFilterGradNative(x, dy, geometry));
  const flop = 2 * batch * size * size * 9 * inChannels * outChannels;
  console.log(JSON.stringify({ pass: 'conv3x3', size, inChannels, outChannels, winograd: usesWinograd(geometry), ...common, forwardMs: +forwardMs.toFixed(1), forwardGflops: +(flop / forwardMs / 1e6).toFixed(1), filterGradMs: +filterGradMs.toFixed(1), filterGradGflops: +(flop / filterGradMs / 1e6).toFixed(1) }));
}
