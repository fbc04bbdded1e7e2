import * as tf from '@tensorflow/tfjs';
import { biLstmBackward, biLstmForward, type BiLstmShape, type BiLstmWeights } from './lstm.js';
import { nativeRuntime } from './runtime.js';

/** Weight tensors of a bidirectional LSTM in the tfjs/Keras layout (gates i, f, c, o). */
export interface BiLstmWeightTensors {
  forwardKernel: tf.Tensor; // [inputDim, 4U]
  forwardRecurrent: tf.Tensor; // [U, 4U]
  forwardBias: tf.Tensor; // [4U]
  backwardKernel: tf.Tensor;
  backwardRecurrent: tf.Tensor;
  backwardBias: tf.Tensor;
}

/** Whether fusedBiLstm can run here (the native module builds and loads). */
export function fusedBiLstmAvailable(): boolean {
  return nativeRuntime() !== null;
}

/**
 * A bidirectional LSTM layer (merge 'concat') as one tfjs op with a custom gradient, computed by
 * the native fused kernel on any tfjs backend: x [B, T, D] → [B, T, 2U] (returnSequences) or
 * [B, 2U] (each direction's last output). `mask` [B, T] (0 = padding) makes a step keep the
 * previous state and repeat the previous output, as Keras does. The mask gets no gradient.
 *
 * Data moves: inputs are read once (dataSync), outputs written once; in a gradient scope the
 * forward pass keeps its gate activations and cell states (plain arrays held by the gradient
 * closure, freed with the tape) for the backward pass.
 */
export function fusedBiLstm(
  x: tf.Tensor3D,
  mask: tf.Tensor | null,
  weights: BiLstmWeightTensors,
  options: { units: number; returnSequences: boolean },
): tf.Tensor {
  const [batch, steps, inputDim] = x.shape;
  const units = options.units;
  const shape: BiLstmShape = { batch, steps, inputDim, units };
  if (mask && (mask.shape.length !== 2 || mask.shape[0] !== batch || mask.shape[1] !== steps)) {
    throw new Error(`fusedBiLstm: mask shape ${mask.shape} must be [${batch}, ${steps}]`);
  }
  const maskValues = mask ? Float32Array.from(mask.dataSync(), (v) => (v ? 1 : 0)) : null;
  const op = tf.customGrad((...args: unknown[]) => {
    const [xIn, kF, rF, bF, kB, rB, bB] = args as tf.Tensor[];
    const xValues = xIn!.dataSync() as Float32Array;
    const w: BiLstmWeights = {
      kernel: [kF!.dataSync() as Float32Array, kB!.dataSync() as Float32Array],
      recurrent: [rF!.dataSync() as Float32Array, rB!.dataSync() as Float32Array],
      bias: [bF!.dataSync() as Float32Array, bB!.dataSync() as Float32Array],
    };
    // Activations are only worth keeping when a gradient will be asked for.
    const training = tf.engine().state.gradientDepth > 0;
    const forward = biLstmForward(shape, xValues, w, maskValues, { keepActivations: training });
    const value = options.returnSequences
      ? tf.tensor3d(forward.outputs, [batch, steps, 2 * units])
      : tf.tensor2d(lastOutputs(forward.outputs, shape), [batch, 2 * units]);
    const gradFunc = (dy: tf.Tensor) => {
      const activations = forward.activations;
      if (!activations) throw new Error('fusedBiLstm: gradient asked outside the gradient scope of the forward pass');
      const dyValues = dy.dataSync() as Float32Array;
      const g = biLstmBackward(shape, xValues, w, maskValues, { outputs: forward.outputs, activations },
        options.returnSequences ? { sequence: dyValues } : { last: dyValues });
      return [
        tf.tensor3d(g.dx, [batch, steps, inputDim]),
        tf.tensor(g.dKernel[0], kF!.shape), tf.tensor(g.dRecurrent[0], rF!.shape), tf.tensor(g.dBias[0], bF!.shape),
        tf.tensor(g.dKernel[1], kB!.shape), tf.tensor(g.dRecurrent[1], rB!.shape), tf.tensor(g.dBias[1], bB!.shape),
      ];
    };
    return { value, gradFunc };
  });
  return op(x, weights.forwardKernel, weights.forwardRecurrent, weights.forwardBias, weights.backwardKernel,
    weights.backwardRecurrent, weights.backwardBias);
}

/** [B, 2U]: the forward direction's output at the last step, the backward direction's at step 0. */
function lastOutputs(outputs: Float32Array, s: BiLstmShape): Float32Array {
  const u = s.units;
  const out = new Float32Array(s.batch * 2 * u);
  for (let b = 0; b < s.batch; b++) {
    out.set(outputs.subarray(((b * s.steps + s.steps - 1) * 2) * u, ((b * s.steps + s.steps - 1) * 2 + 1) * u), b * 2 * u);
    out.set(outputs.subarray((b * s.steps * 2 + 1) * u, (b * s.steps * 2 + 2) * u), (b * 2 + 1) * u);
  }
  return out;
}
