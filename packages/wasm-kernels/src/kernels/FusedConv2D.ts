import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { conv2dNative, type Conv2DAttrs } from './Conv2D.js';

interface FusedConv2DAttrs extends Conv2DAttrs {
  activation: string;
}

let original: tf.KernelFunc | undefined;

/** wasm's own (XNNPACK) FusedConv2D, for what the native path does not take. */
export function setFusedConv2DOriginal(kernelFunc: tf.KernelFunc | undefined): void {
  original = kernelFunc;
}

/**
 * Convolutions outside a gradient scope (inference: predict, evaluate, serving), which tfjs fuses
 * with their bias and activation: the same native convolution as Conv2D (so a model computes the
 * same outputs in training and in serving, and gets Winograd's speed in both), then bias and ReLU
 * in one pass over the output. Other activations, PReLU weights and biases that are not one value
 * per output channel go to wasm's own kernel, as do the convolutions Conv2D leaves to XNNPACK.
 */
export const fusedConv2DConfig: tf.KernelConfig = {
  kernelName: tf.FusedConv2D,
  backendName: 'wasm',
  kernelFunc: (args) => {
    const { inputs, attrs, backend } = args;
    const { x, filter, bias, preluActivationWeights } = inputs as Record<string, tf.TensorInfo | undefined>;
    const a = attrs as unknown as FusedConv2DAttrs;
    if (!original) throw new Error('FusedConv2D wrapper used before registerWasmTrainingKernels()');
    const outChannels = filter!.shape[3]!;
    const simpleBias = !bias || (bias.dtype === 'float32' && tf.util.sizeFromShape(bias.shape) === outChannels);
    if ((a.activation !== 'linear' && a.activation !== 'relu') || preluActivationWeights || !simpleBias) return original(args);
    const wasm = backend as BackendWasm;
    const out = conv2dNative(wasm, x!, filter!, a);
    if (!out) return original(args);
    const y = wasm.typedArrayFromHeap(out) as Float32Array;
    const b = bias ? (wasm.typedArrayFromHeap(bias) as Float32Array) : new Float32Array(outChannels);
    if (a.activation === 'relu') {
      for (let i = 0; i < y.length; i += outChannels) {
        for (let c = 0; c < outChannels; c++) {
          const v = y[i + c]! + b[c]!;
          y[i + c] = v > 0 ? v : 0;
        }
      }
    } else if (bias) {
      for (let i = 0; i < y.length; i += outChannels) for (let c = 0; c < outChannels; c++) y[i + c]! += b[c]!;
    }
    return out;
  },
};
