import * as tf from '@tensorflow/tfjs';

/**
 * What a frozen Keras trunk computes at inference, compiled once from its functional topology and
 * weights: BatchNormalization folded into the preceding convolution's kernel and bias, ReLU/ReLU6
 * fused as that convolution's activation, ZeroPadding2D folded into the next convolution's pads.
 * Both executors (onnxruntime, tfjs) run this plan; neither sees a Keras layer.
 */
export interface TrunkPlan {
  /** The trunk's first layer receives (byte/255)·scale + offset, computed in float32 in that order. */
  input: { height: number; width: number; channels: number; scale: number; offset: number };
  /** In dependency order; every value is [n, height, width, channels]; the trunk's input is 'input'. */
  steps: TrunkStep[];
  /** The values pooled into features, in order (a spec node may be given twice). */
  outputs: { value: string; channels: number }[];
  pooling: readonly ('mean' | 'max')[];
  featureDim: number;
}

/** A plan compiled for one runtime. */
export interface TrunkExecutor {
  /** Which runtime computes the features: `onnxruntime <version>` or `tfjs <backend>`. */
  runtime: string;
  /** n consecutive HWC uint8 images at the plan's input size → n × featureDim features. */
  run(pixels: Uint8Array, flip: boolean): Promise<Float32Array>;
  dispose(): void;
}

/** Pads as [top, left, bottom, right], the order ONNX takes them. */
export type Pads = [number, number, number, number];
export type Activation = 'linear' | 'relu' | 'relu6';

export type TrunkStep =
  | {
    op: 'conv'; input: string; output: string;
    /** depthwise: one filter per input channel (depth multiplier 1); kernel [kh, kw, in, 1]. Else [kh, kw, in, out]. */
    depthwise: boolean;
    kernel: Float32Array; kernelShape: [number, number, number, number]; bias: Float32Array;
    strides: [number, number]; dilations: [number, number]; pads: Pads;
    /** The pads TF's 'same' would give here: the tfjs executor passes 'same' instead of explicit pads when they agree. */
    samePads: Pads;
    activation: Activation;
  }
  | { op: 'add'; inputs: string[]; output: string }
  | { op: 'concat'; inputs: string[]; output: string }
  | { op: 'maxPool' | 'avgPool'; input: string; output: string; size: [number, number]; strides: [number, number]; padding: 'valid' | 'same'; pads: Pads };

interface LayerConfig { name: string; class_name: string; inbound_nodes: unknown[]; config: Record<string, unknown> }
export interface FunctionalConfig { layers: LayerConfig[]; input_layers: unknown[]; output_layers: unknown[]; name?: string }

export function layersConfig(modelJson: tf.io.ModelJSON): FunctionalConfig {
  const topology = modelJson.modelTopology as { model_config?: { config: FunctionalConfig } };
  const config = topology.model_config?.config;
  if (!config?.layers) throw new Error('not a Keras functional model topology');
  return config;
}

const inboundOf = (layer: LayerConfig): string[] => (layer.inbound_nodes as unknown[][][]).flatMap((node) => node.map((inbound) => inbound[0] as string));

/** Names of the layers the given outputs depend on (walks inbound_nodes back to the input). */
export function ancestors(config: FunctionalConfig, outputs: readonly string[]): Set<string> {
  const byName = new Map(config.layers.map((l) => [l.name, l]));
  const seen = new Set<string>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const layer = byName.get(name);
    if (!layer) throw new Error(`layer '${name}' referenced but not defined`);
    stack.push(...inboundOf(layer));
  }
  return seen;
}

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)]);

/** TF's 'same' padding of one axis: output ceil(in/stride), the odd pixel of padding at the end. */
function sameAxis(size: number, kernel: number, stride: number, dilation: number): [number, number] {
  const total = Math.max((Math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function outAxis(size: number, before: number, after: number, kernel: number, stride: number, dilation: number): number {
  return Math.floor((size + before + after - ((kernel - 1) * dilation + 1)) / stride) + 1;
}

type Shape = [number, number, number];

/**
 * Compiles the layers `outputs` depend on. `files` are a layers model's topology and weights (as
 * nsfwjs ships them, or a model directory's verified copy); the weights decode as tfjs decodes them
 * for the layers model itself (dequantised uint8), then fold in float64 and round once to float32.
 */
export function compileTrunk(
  files: { modelJson: tf.io.ModelJSON; weights: Uint8Array },
  options: { outputs: readonly string[]; height: number; width: number; inputScale: number; inputOffset: number; pooling: readonly ('mean' | 'max')[] },
): TrunkPlan {
  const config = layersConfig(files.modelJson);
  const keep = ancestors(config, options.outputs);
  const layers = config.layers.filter((l) => keep.has(l.name));
  const consumers = new Map<string, LayerConfig[]>();
  for (const layer of layers) for (const from of inboundOf(layer)) consumers.set(from, [...(consumers.get(from) ?? []), layer]);
  const wanted = new Set(options.outputs);
  /** The one layer reading `name`'s output, if that is all that reads it (so it can be folded into it). */
  const soleConsumer = (name: string): LayerConfig | undefined => {
    const list = consumers.get(name) ?? [];
    return list.length === 1 && !wanted.has(name) ? list[0] : undefined;
  };

  const specs = (files.modelJson.weightsManifest ?? []).flatMap((g) => g.weights);
  const tensors = tf.io.decodeWeights(files.weights.slice().buffer, specs);
  const weight = (layer: string, param: string): Float32Array => {
    const t = tensors[`${layer}/${param}`];
    if (!t) throw new Error(`trunk weights have no '${layer}/${param}'`);
    return t.dataSync() as Float32Array;
  };

  const steps: TrunkStep[] = [];
  /** Keras layer name → the plan value holding its output, and that value's shape. */
  const values = new Map<string, { value: string; shape: Shape }>();
  /** ZeroPadding2D layers: what they pad, folded into the convolutions that read them. */
  const padded = new Map<string, { source: string; pad: [[number, number], [number, number]] }>();
  const valueOf = (name: string, reader: LayerConfig) => {
    const v = values.get(name);
    if (!v) throw new Error(`layer '${reader.name}' (${reader.class_name}) reads '${name}', which the trunk compiler could not place (a ZeroPadding2D read by something other than a convolution?)`);
    return v;
  };
  const folded = new Set<string>();

  try {
    for (const layer of layers) {
      if (folded.has(layer.name)) continue;
      const cfg = layer.config;
      const inputs = inboundOf(layer);
      const where = `layer '${layer.name}' (${layer.class_name})`;
      switch (layer.class_name) {
        case 'InputLayer': {
          const channels = Number((cfg.batch_input_shape as (number | null)[])[3] ?? 3);
          values.set(layer.name, { value: 'input', shape: [options.height, options.width, channels] });
          break;
        }
        case 'ZeroPadding2D': {
          const p = cfg.padding;
          const pad = (Array.isArray(p) && Array.isArray(p[0]) ? [pair(p[0]), pair(p[1])] : [pair(p), pair(Array.isArray(p) ? p[1] : p)]) as [[number, number], [number, number]];
          padded.set(layer.name, { source: inputs[0]!, pad });
          break;
        }
        case 'Conv2D':
        case 'DepthwiseConv2D': {
          const depthwise = layer.class_name === 'DepthwiseConv2D';
          if ((cfg.activation ?? 'linear') !== 'linear') throw new Error(`${where}: activation '${cfg.activation}' inside the convolution is not supported`);
          if (cfg.data_format && cfg.data_format !== 'channels_last') throw new Error(`${where}: data_format '${cfg.data_format}' is not supported`);
          if (depthwise && Number(cfg.depth_multiplier ?? 1) !== 1) throw new Error(`${where}: depth_multiplier ${cfg.depth_multiplier} is not supported`);
          const zero = padded.get(inputs[0]!);
          const source = valueOf(zero ? zero.source : inputs[0]!, layer);
          const [h, w, c] = source.shape;
          const [kh, kw] = pair(cfg.kernel_size);
          const strides = pair(cfg.strides ?? 1);
          const dilations = pair(cfg.dilation_rate ?? 1);
          const [[zt, zb], [zl, zr]] = zero?.pad ?? [[0, 0], [0, 0]];
          if (cfg.padding !== 'same' && cfg.padding !== 'valid') throw new Error(`${where}: padding '${cfg.padding}' is not supported`);
          // 'same' pads the zero-padded input further.
          const [t, b] = cfg.padding === 'same' ? sameAxis(h + zt + zb, kh, strides[0], dilations[0]) : [0, 0];
          const [l, r] = cfg.padding === 'same' ? sameAxis(w + zl + zr, kw, strides[1], dilations[1]) : [0, 0];
          const pads: Pads = [zt + t, zl + l, zb + b, zr + r];
          const [sameT, sameB] = sameAxis(h, kh, strides[0], dilations[0]);
          const [sameL, sameR] = sameAxis(w, kw, strides[1], dilations[1]);
          const outC = depthwise ? c : Number(cfg.filters);
          const kernel = weight(layer.name, depthwise ? 'depthwise_kernel' : 'kernel');
          if (kernel.length !== kh * kw * c * (depthwise ? 1 : outC)) throw new Error(`${where}: kernel has ${kernel.length} values for ${kh}×${kw}×${c}→${outC}`);
          // Folded in float64: k' = k·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β.
          const k64 = Float64Array.from(kernel);
          const b64 = new Float64Array(outC);
          if (cfg.use_bias) b64.set(weight(layer.name, 'bias'));
          let last = layer;
          const bn = soleConsumer(layer.name);
          if (bn?.class_name === 'BatchNormalization') {
            const axis = Number(bn.config.axis ?? -1);
            if (axis !== -1 && axis !== 3) throw new Error(`layer '${bn.name}' (BatchNormalization): axis ${axis} is not the channel axis`);
            const epsilon = Number(bn.config.epsilon ?? 1e-3);
            const gamma = bn.config.scale === false ? undefined : weight(bn.name, 'gamma');
            const beta = bn.config.center === false ? undefined : weight(bn.name, 'beta');
            const mean = weight(bn.name, 'moving_mean');
            const variance = weight(bn.name, 'moving_variance');
            for (let o = 0; o < outC; o++) {
              const s = (gamma ? gamma[o]! : 1) / Math.sqrt(variance[o]! + epsilon);
              b64[o] = (b64[o]! - mean[o]!) * s + (beta ? beta[o]! : 0);
              for (let i = o; i < k64.length; i += outC) k64[i]! *= s;
            }
            folded.add(bn.name);
            last = bn;
          }
          let activation: Activation = 'linear';
          const act = soleConsumer(last.name);
          if (act?.class_name === 'ReLU' || (act?.class_name === 'Activation' && act.config.activation === 'relu')) {
            const max = act.config.max_value;
            if (Number(act.config.negative_slope ?? 0) !== 0 || Number(act.config.threshold ?? 0) !== 0 || (max != null && Number(max) !== 6)) {
              throw new Error(`layer '${act.name}' (ReLU): only ReLU and ReLU6 are supported, got ${JSON.stringify(act.config)}`);
            }
            activation = max == null ? 'relu' : 'relu6';
            folded.add(act.name);
            last = act;
          }
          const shape: Shape = [outAxis(h, pads[0], pads[2], kh, strides[0], dilations[0]), outAxis(w, pads[1], pads[3], kw, strides[1], dilations[1]), outC];
          steps.push({
            op: 'conv', input: source.value, output: last.name, depthwise, kernel: Float32Array.from(k64), kernelShape: [kh, kw, c, depthwise ? 1 : outC],
            bias: Float32Array.from(b64), strides, dilations, pads, samePads: [sameT, sameL, sameB, sameR], activation,
          });
          // Every folded layer's output is the convolution's (a wanted node is never folded over: see soleConsumer).
          values.set(last.name, { value: last.name, shape });
          break;
        }
        case 'Add':
        case 'Concatenate': {
          const sources = inputs.map((name) => valueOf(name, layer));
          const [h, w] = sources[0]!.shape;
          if (layer.class_name === 'Concatenate' && ![-1, 3].includes(Number(cfg.axis ?? -1))) throw new Error(`${where}: axis ${cfg.axis} is not the channel axis`);
          if (sources.some((s) => s.shape[0] !== h || s.shape[1] !== w || (layer.class_name === 'Add' && s.shape[2] !== sources[0]!.shape[2]))) {
            throw new Error(`${where}: input shapes ${sources.map((s) => `[${s.shape.join(', ')}]`).join(', ')} do not match`);
          }
          const channels = layer.class_name === 'Add' ? sources[0]!.shape[2] : sources.reduce((sum, s) => sum + s.shape[2], 0);
          steps.push({ op: layer.class_name === 'Add' ? 'add' : 'concat', inputs: sources.map((s) => s.value), output: layer.name } as TrunkStep);
          values.set(layer.name, { value: layer.name, shape: [h, w, channels] });
          break;
        }
        case 'MaxPooling2D':
        case 'AveragePooling2D': {
          const source = valueOf(inputs[0]!, layer);
          const [h, w, c] = source.shape;
          const size = pair(cfg.pool_size);
          const strides = pair(cfg.strides ?? cfg.pool_size);
          const padding = cfg.padding as 'valid' | 'same';
          if (padding !== 'valid' && padding !== 'same') throw new Error(`${where}: padding '${padding}' is not supported`);
          const [t, b] = padding === 'same' ? sameAxis(h, size[0], strides[0], 1) : [0, 0];
          const [l, r] = padding === 'same' ? sameAxis(w, size[1], strides[1], 1) : [0, 0];
          steps.push({ op: layer.class_name === 'MaxPooling2D' ? 'maxPool' : 'avgPool', input: source.value, output: layer.name, size, strides, padding, pads: [t, l, b, r] });
          values.set(layer.name, { value: layer.name, shape: [outAxis(h, t, b, size[0], strides[0], 1), outAxis(w, l, r, size[1], strides[1], 1), c] });
          break;
        }
        default:
          throw new Error(`${where}: the trunk compiler does not support this layer class`);
      }
    }
  } finally {
    tf.dispose(tensors);
  }

  const outputs = options.outputs.map((name) => {
    const v = values.get(name);
    if (!v) throw new Error(`trunk output '${name}' has no value (folded into another layer?)`);
    return { value: v.value, channels: v.shape[2] };
  });
  const input = values.get(layers.find((l) => l.class_name === 'InputLayer')!.name)!;
  return {
    input: { height: options.height, width: options.width, channels: input.shape[2], scale: options.inputScale, offset: options.inputOffset },
    steps, outputs, pooling: options.pooling,
    featureDim: outputs.reduce((sum, o) => sum + o.channels, 0) * options.pooling.length,
  };
}

