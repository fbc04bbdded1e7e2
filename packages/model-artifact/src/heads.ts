import * as tf from '@tensorflow/tfjs';
import { OnnxGraph, OnnxSession, resolveEncoderRuntime, type EncoderRuntime } from '@filmgenre/onnx-runtime';
import { activeBackend } from '@filmgenre/tf-runtime';

/**
 * The saved heads of a frozen-feature model, ready to score feature rows. Training saves them as a
 * tfjs model: 25 bagged heads (features → dense ReLU → dropout → dense sigmoid, or a logistic
 * regression without the hidden layer) whose probabilities are averaged. Run as 25 sub-models on
 * tfjs-wasm they cost 1–2 CPU-ms per film at batch 8, 6 at batch 1, as much as the frozen trunk.
 * Compiled into one ONNX graph (every head's hidden layer as one matrix product, their output
 * layers as one batched product, then the mean of the sigmoids) onnxruntime runs them 3–5× cheaper
 * (docs/benchmarks/serving.md, "The heads on onnxruntime"). Evaluation, batch prediction and serving
 * all score through this one path; training keeps tfjs, which it trains with.
 */
export interface FeatureHeads {
  /** Where the heads run: onnxruntime for the bagged-head shape, tfjs where it does not load or for any other model. */
  readonly runtime: EncoderRuntime;
  /** Probabilities, `rows` × genres, of `rows` feature rows laid end to end. */
  predict(features: Float32Array, rows: number): Promise<Float32Array>;
  dispose(): void;
}

interface DenseWeights {
  kernel: Float32Array;
  bias: Float32Array;
  inputs: number;
  units: number;
  activation: string;
}

/** One head's dense layers in order, or undefined when the head is anything but dense (+ dropout) layers. */
function denseLayersOf(layers: readonly tf.layers.Layer[]): DenseWeights[] | undefined {
  const dense: DenseWeights[] = [];
  for (const layer of layers) {
    const kind = layer.getClassName();
    if (kind === 'InputLayer' || kind === 'Dropout') continue; // dropout is the identity at inference
    if (kind !== 'Dense') return undefined;
    const config = layer.getConfig() as { units: number; activation: string; useBias?: boolean };
    const [kernel, bias] = layer.getWeights();
    if (!kernel || !bias || config.useBias === false) return undefined;
    dense.push({ kernel: kernel.dataSync() as Float32Array, bias: bias.dataSync() as Float32Array, inputs: kernel.shape[0]!, units: config.units, activation: config.activation });
  }
  return dense;
}

/**
 * The heads of `model` as lists of dense layers, all of one shape: [ReLU hidden, sigmoid output] or
 * [sigmoid output]. Undefined for any other model (a CNN, an LSTM), which tfjs then runs as it is.
 */
export function baggedHeadsOf(model: tf.LayersModel): DenseWeights[][] | undefined {
  const subModels = model.layers.filter((l) => l instanceof tf.LayersModel) as tf.LayersModel[];
  const others = model.layers.filter((l) => !(l instanceof tf.LayersModel)).map((l) => l.getClassName());
  let heads: (DenseWeights[] | undefined)[];
  if (subModels.length > 0) {
    // An ensemble: its input, the heads, and the layer averaging their probabilities.
    const averaged = subModels.length === 1 ? others.every((k) => k === 'InputLayer') : others.filter((k) => k !== 'InputLayer').join() === 'Average';
    if (!averaged) return undefined;
    heads = subModels.map((m) => denseLayersOf(m.layers));
  } else {
    heads = [denseLayersOf(model.layers)];
  }
  const first = heads[0];
  if (!first || heads.some((h) => !h)) return undefined;
  const shape = (h: DenseWeights[]) => h.map((d) => `${d.inputs}:${d.units}:${d.activation}`).join();
  if (heads.some((h) => shape(h!) !== shape(first))) return undefined;
  const mlp = first.length === 2 && first[0]!.activation === 'relu' && first[1]!.activation === 'sigmoid';
  const logistic = first.length === 1 && first[0]!.activation === 'sigmoid';
  return mlp || logistic ? (heads as DenseWeights[][]) : undefined;
}

/** One ONNX graph computing the mean probability of every head: features [batch, dim] → probabilities [batch, genres]. */
export function baggedHeadsGraph(heads: readonly DenseWeights[][]): OnnxGraph {
  const count = heads.length;
  const first = heads[0]!;
  const dim = first[0]!.inputs;
  const genres = first.at(-1)!.units;
  const g = new OnnxGraph('bagged-heads');
  const features = g.input('features', 'float32', ['batch', dim]);
  // The first layer of every head side by side: one [dim, heads × units] product instead of `count`.
  const units = first[0]!.units;
  const firstKernel = new Float32Array(dim * count * units);
  const firstBias = new Float32Array(count * units);
  heads.forEach((head, h) => {
    const { kernel, bias } = head[0]!;
    for (let i = 0; i < dim; i++) firstKernel.set(kernel.subarray(i * units, (i + 1) * units), (i * count + h) * units);
    firstBias.set(bias, h * units);
  });
  const firstLayer = g.apply('Add', [g.apply('MatMul', [features, g.constant('kernel_0', firstKernel, [dim, count * units])]), g.constant('bias_0', firstBias, [count * units])]);
  let logits: string; // [heads, batch, genres]
  if (first.length === 1) {
    logits = g.apply('Transpose', [g.apply('Reshape', [firstLayer, g.int64s('by_head', [-1, count, genres])])], { perm: { ints: [1, 0, 2] } });
  } else {
    const hiddenUnits = units;
    const hidden = g.apply('Transpose', [g.apply('Reshape', [g.apply('Relu', [firstLayer]), g.int64s('by_head', [-1, count, hiddenUnits])])], { perm: { ints: [1, 0, 2] } });
    // Each head's output layer on its own hidden units: one batched product over the heads.
    const kernel = new Float32Array(count * hiddenUnits * genres);
    const bias = new Float32Array(count * genres);
    heads.forEach((head, h) => {
      kernel.set(head[1]!.kernel, h * hiddenUnits * genres);
      bias.set(head[1]!.bias, h * genres);
    });
    logits = g.apply('Add', [g.apply('MatMul', [hidden, g.constant('kernel_1', kernel, [count, hiddenUnits, genres])]), g.constant('bias_1', bias, [count, 1, genres])]);
  }
  const mean = g.apply('ReduceMean', [g.apply('Sigmoid', [logits])], { axes: { ints: [0] }, keepdims: { int: 0 } });
  g.output(mean, 'probabilities', 'float32', ['batch', genres]);
  return g;
}

/**
 * Compiles `model` for scoring: on onnxruntime when it loads (FILMGENRE_ENCODER_RUNTIME, as the
 * frozen encoders) and the model is bagged heads; else tfjs runs the model itself. The caller keeps
 * owning `model`.
 */
export async function compileFeatureHeads(model: tf.LayersModel, options: { runtime?: EncoderRuntime; threads?: number } = {}): Promise<FeatureHeads> {
  const dim = model.inputs[0]!.shape.at(-1) as number;
  const genres = model.outputs[0]!.shape.at(-1) as number;
  const heads = (options.runtime ?? resolveEncoderRuntime()) === 'onnxruntime' ? baggedHeadsOf(model) : undefined;
  if (!heads) {
    return {
      runtime: 'tfjs',
      async predict(features, rows) {
        const y = tf.tidy(() => model.predict(tf.tensor2d(features, [rows, dim])) as tf.Tensor);
        try {
          return (await y.data()) as Float32Array;
        } finally {
          y.dispose();
        }
      },
      dispose() {},
    };
  }
  const session = await OnnxSession.create(baggedHeadsGraph(heads).encode(), { threads: options.threads ?? activeBackend()?.threads ?? 1 });
  return {
    runtime: 'onnxruntime',
    async predict(features, rows) {
      if (features.length !== rows * dim) throw new RangeError(`expected ${rows} rows of ${dim} features, got ${features.length} values`);
      const out = await session.run({ features: { type: 'float32', data: features, dims: [rows, dim] } });
      const probabilities = out['probabilities']!;
      if (probabilities.data.length !== rows * genres) throw new Error(`the heads returned ${probabilities.data.length} values for ${rows} rows of ${genres} genres`);
      return probabilities.data;
    },
    dispose() {
      void session.release();
    },
  };
}
