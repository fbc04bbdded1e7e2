import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { biLstmBackward, biLstmForward, type BiLstmActivations, type BiLstmGradients, type BiLstmShape, type BiLstmWeights } from './lstm.js';
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
 * Tensors as views of tfjs-backend-wasm's heap, when the native module runs on that heap (tfjs's
 * threaded build): the fused kernel then reads its operands and writes its results where tfjs keeps
 * them. Null elsewhere (other backends, or the module on its own memory), where values are copied.
 */
interface HeapTensors {
  view(t: tf.Tensor): Float32Array;
  /** A new float32 tensor on the heap, uninitialised (the kernel writes all of it). */
  create(shape: number[]): tf.Tensor;
}

function heapTensors(): HeapTensors | null {
  if (tf.getBackend() !== 'wasm' || !nativeRuntime()?.sharesHostHeap) return null;
  const backend = tf.backend() as BackendWasm;
  return {
    view: (t) => backend.typedArrayFromHeap(t) as Float32Array,
    create: (shape) => tf.engine().makeTensorFromTensorInfo(backend.makeOutput(shape, 'float32'), backend),
  };
}

/**
 * A bidirectional LSTM layer (merge 'concat') as one tfjs op with a custom gradient, computed by
 * the native fused kernel on any tfjs backend: x [B, T, D] → [B, T, 2U] (returnSequences) or
 * [B, 2U] (each direction's last output). `mask` [B, T] (0 = padding) makes a step keep the
 * previous state and repeat the previous output, as Keras does. The mask gets no gradient.
 *
 * Data moves: where the module runs on tfjs's wasm heap, nothing is copied: inputs are read in
 * place, outputs and, in a gradient scope, the gate activations and cell states for the backward
 * pass are tensors the kernel writes into (the activations saved on the tape, freed with it; at
 * lstm-ref's size ≈ 80 MB of copies per training step for the first layer before). Elsewhere
 * inputs are read once (dataSync) and the activations kept as arrays in the gradient closure.
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
  const outputShape = [batch, steps, 2 * units];
  const op = tf.customGrad((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const inputs = args as tf.Tensor[];
    // Activations are only worth keeping when a gradient will be asked for.
    const training = tf.engine().state.gradientDepth > 0;
    const heap = heapTensors();
    // Result tensors first: allocating on the heap can grow it, and views are taken after.
    // Activations in the order gates (forward, backward), then cells (forward, backward).
    const outputs = heap?.create(outputShape);
    const activationTensors = heap && training
      ? [4 * units, 4 * units, units, units].map((width) => heap.create([batch * steps * width]))
      : undefined;
    const [xValues, ...w] = inputs.map((t) => (heap ? heap.view(t) : (t.dataSync() as Float32Array)));
    const forward = biLstmForward(shape, xValues!, weightArrays(w), maskValues, {
      keepActivations: training,
      into: {
        ...(outputs ? { outputs: heap!.view(outputs) } : {}),
        ...(activationTensors ? activationsOf(activationTensors.map((t) => heap!.view(t))) : {}),
      },
    });
    const sequence = outputs ?? tf.tensor3d(forward.outputs, outputShape as [number, number, number]);
    const value = options.returnSequences ? sequence : tf.tensor2d(lastOutputs(forward.outputs, shape), [batch, 2 * units]);
    // On the heap, the backward pass reads everything from tensors saved on the tape.
    if (heap && training) save([...inputs, sequence, ...activationTensors!]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      if (!forward.activations) throw new Error('fusedBiLstm: gradient asked outside the gradient scope of the forward pass');
      const heapNow = saved.length > 0 ? heapTensors() : null;
      const read = (t: tf.Tensor) => (heapNow ? heapNow.view(t) : (t.dataSync() as Float32Array));
      // The gradients as new heap tensors first (allocating can grow the heap), views after.
      const grads = heapNow ? inputs.map((t) => heapNow.create(t.shape)) : undefined;
      // The operands: the saved tensors when there are any (their views, or their values if the
      // backend changed since), else the forward pass's own arrays.
      const [xIn, ...wIn] = saved.length > 0 ? saved.slice(0, 7).map(read) : [xValues!, ...w];
      const activations = saved.length > 0 ? activationsOf(saved.slice(8).map(read)) : forward.activations;
      const outputsIn = saved.length > 0 ? read(saved[7]!) : forward.outputs;
      const dyValues = read(dy);
      const into = grads?.map((t) => heapNow!.view(t));
      const g = biLstmBackward(shape, xIn!, weightArrays(wIn), maskValues, { outputs: outputsIn, activations },
        options.returnSequences ? { sequence: dyValues } : { last: dyValues },
        into ? gradientsOf(into) : {});
      if (grads) return grads;
      const values = [g.dx, g.dKernel[0], g.dRecurrent[0], g.dBias[0], g.dKernel[1], g.dRecurrent[1], g.dBias[1]];
      return values.map((v, i) => tf.tensor(v, inputs[i]!.shape));
    };
    return { value, gradFunc };
  });
  return op(x, weights.forwardKernel, weights.forwardRecurrent, weights.forwardBias, weights.backwardKernel,
    weights.backwardRecurrent, weights.backwardBias);
}

/** The weights from the op's input order (kernel, recurrent, bias; forward then backward). */
function weightArrays(w: Float32Array[]): BiLstmWeights {
  return { kernel: [w[0]!, w[3]!], recurrent: [w[1]!, w[4]!], bias: [w[2]!, w[5]!] };
}

/** Gradients in the op's input order (x, then the weights') as the backward pass's destinations. */
function gradientsOf(g: Float32Array[]): BiLstmGradients {
  return { dx: g[0]!, dKernel: [g[1]!, g[4]!], dRecurrent: [g[2]!, g[5]!], dBias: [g[3]!, g[6]!] };
}

/** Activations from [gates forward, gates backward, cells forward, cells backward]. */
function activationsOf(a: Float32Array[]): BiLstmActivations {
  return { gates: [a[0]!, a[1]!], cells: [a[2]!, a[3]!] };
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
