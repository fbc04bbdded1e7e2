import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { biLstmBackward, biLstmForward, type BiLstmActivations, type BiLstmShape, type BiLstmWeights } from './lstm.js';
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
    const outputs = heap?.create(outputShape);
    const activationTensors = heap && training
      ? [0, 1].flatMap(() => [heap.create([batch * steps * 4 * units]), heap.create([batch * steps * units])])
      : undefined;
    const [xValues, ...w] = inputs.map((t) => (heap ? heap.view(t) : (t.dataSync() as Float32Array)));
    const weightValues = weightArrays(w);
    const views = activationTensors?.map((t) => heap!.view(t));
    const forward = biLstmForward(shape, xValues!, weightValues, maskValues, {
      keepActivations: training,
      into: {
        ...(outputs ? { outputs: heap!.view(outputs) } : {}),
        ...(views ? { gates: [views[0]!, views[2]!] as const, cells: [views[1]!, views[3]!] as const } : {}),
      },
    });
    const sequence = outputs ?? tf.tensor3d(forward.outputs, outputShape as [number, number, number]);
    const value = options.returnSequences ? sequence : tf.tensor2d(lastOutputs(forward.outputs, shape), [batch, 2 * units]);
    // On the heap, the backward pass reads everything from tensors saved on the tape.
    if (heap && training) save([...inputs, sequence, ...activationTensors!]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const activations = forward.activations;
      if (!activations) throw new Error('fusedBiLstm: gradient asked outside the gradient scope of the forward pass');
      const heapNow = saved.length > 0 ? heapTensors() : null;
      const gradShapes = inputs.map((t) => t.shape);
      const grads = heapNow ? gradShapes.map((s) => heapNow.create(s)) : undefined;
      const read = (t: tf.Tensor) => (heapNow ? heapNow.view(t) : (t.dataSync() as Float32Array));
      // From the saved tensors when there are any (their views, or their values if the backend changed).
      const [xSaved, ...wSaved] = saved.length > 0 ? saved.slice(0, 7).map(read) : [xValues!, ...w];
      const outputsSaved = saved.length > 0 ? read(saved[7]!) : forward.outputs;
      const a = saved.length > 0 ? saved.slice(8).map(read) : undefined;
      const activationsSaved: BiLstmActivations = a ? { gates: [a[0]!, a[2]!], cells: [a[1]!, a[3]!] } : activations;
      const gv = grads?.map((t) => heapNow!.view(t));
      const dyValues = read(dy);
      const g = biLstmBackward(shape, xSaved!, weightArrays(wSaved), maskValues, { outputs: outputsSaved, activations: activationsSaved },
        options.returnSequences ? { sequence: dyValues } : { last: dyValues },
        gv ? { dx: gv[0]!, dKernel: [gv[1]!, gv[4]!], dRecurrent: [gv[2]!, gv[5]!], dBias: [gv[3]!, gv[6]!] } : {});
      if (grads) return grads;
      const values = [g.dx, g.dKernel[0], g.dRecurrent[0], g.dBias[0], g.dKernel[1], g.dRecurrent[1], g.dBias[1]];
      return values.map((v, i) => tf.tensor(v, gradShapes[i]));
    };
    return { value, gradFunc };
  });
  return op(x, weights.forwardKernel, weights.forwardRecurrent, weights.forwardBias, weights.backwardKernel,
    weights.backwardRecurrent, weights.backwardBias);
}

/** The weights in the op's input order (kernel, recurrent, bias; forward then backward). */
function weightArrays(w: Float32Array[]): BiLstmWeights {
  return { kernel: [w[0]!, w[3]!], recurrent: [w[1]!, w[4]!], bias: [w[2]!, w[5]!] };
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
