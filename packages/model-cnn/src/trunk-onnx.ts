import { encoderRuntimeLabel, OnnxGraph, OnnxSession } from '@filmgenre/onnx-runtime';
import type { TrunkExecutor, TrunkPlan } from './trunk-plan.js';

/** Keras kernel [kh, kw, in, out] (depthwise: [kh, kw, c, 1]) → ONNX's [out, in/group, kh, kw]. */
function onnxKernel(kernel: Float32Array, [kh, kw, inC, outC]: readonly number[], depthwise: boolean): { data: Float32Array; dims: number[] } {
  const data = new Float32Array(kernel.length);
  if (depthwise) {
    for (let t = 0; t < kh * kw; t++) for (let c = 0; c < inC; c++) data[c * kh * kw + t] = kernel[t * inC + c]!;
    return { data, dims: [inC, 1, kh, kw] };
  }
  for (let t = 0; t < kh * kw; t++) {
    for (let i = 0; i < inC; i++) for (let o = 0; o < outC; o++) data[(o * inC + i) * kh * kw + t] = kernel[(t * inC + i) * outC + o]!;
  }
  return { data, dims: [outC, inC, kh, kw] };
}

/**
 * The plan as an ONNX graph: input the posters as they are decoded, uint8 [n, H, W, C]; output
 * [n, featureDim]. The graph scales and transposes them to the convolutions' NCHW itself, with the
 * same float32 operations in the same order as the tensor ops that fed the layers model (so the
 * input is bit-identical), and faster than a float32 NCHW copy made in JavaScript (measured in
 * docs/benchmarks/poster-trunk.md).
 */
export function trunkOnnxGraph(plan: TrunkPlan): OnnxGraph {
  const g = new OnnxGraph('poster-trunk');
  const { height, width, channels, scale, offset } = plan.input;
  let x = g.apply('Div', [g.apply('Cast', [g.input('pixels', 'uint8', ['n', height, width, channels])], { to: { int: 1 } }), g.scalar('byte_max', 255)]);
  if (scale !== 1) x = g.apply('Mul', [x, g.scalar('scale', scale)]);
  if (offset !== 0) x = g.apply('Add', [x, g.scalar('offset', offset)]);
  const input = g.apply('Transpose', [x], { perm: { ints: [0, 3, 1, 2] } });
  const names = new Map<string, string>([['input', input]]);
  const read = (value: string) => names.get(value)!;
  let clip: [string, string] | undefined;
  const ints = (values: readonly number[]) => ({ ints: values });
  for (const step of plan.steps) {
    let out: string;
    if (step.op === 'conv') {
      const k = onnxKernel(step.kernel, step.kernelShape, step.depthwise);
      const conv = g.apply('Conv', [read(step.input), g.constant(`${step.output}_w`, k.data, k.dims), g.constant(`${step.output}_b`, step.bias, [step.bias.length])], {
        kernel_shape: ints(step.kernelShape.slice(0, 2)), strides: ints(step.strides), dilations: ints(step.dilations), pads: ints(step.pads),
        group: { int: step.depthwise ? step.kernelShape[2] : 1 },
      }, `${step.output}_conv`);
      if (step.activation === 'relu6') {
        clip ??= [g.scalar('zero', 0), g.scalar('six', 6)];
        out = g.apply('Clip', [conv, ...clip], {}, step.output);
      } else {
        out = step.activation === 'relu' ? g.apply('Relu', [conv], {}, step.output) : conv;
      }
    } else if (step.op === 'add') {
      out = step.inputs.slice(1).reduce((sum, v) => g.apply('Add', [sum, read(v)], {}, step.output), read(step.inputs[0]!));
    } else if (step.op === 'concat') {
      out = g.apply('Concat', step.inputs.map(read), { axis: { int: 1 } }, step.output);
    } else {
      const attributes = { kernel_shape: ints(step.size), strides: ints(step.strides), pads: ints(step.pads) };
      // TF's average pooling leaves padding out of the count, as ONNX does by default (count_include_pad 0).
      out = g.apply(step.op === 'maxPool' ? 'MaxPool' : 'AveragePool', [read(step.input)], attributes, step.output);
    }
    names.set(step.output, out);
  }
  const pooled = plan.outputs.flatMap(({ value }) => plan.pooling.map((p) => g.apply(p === 'mean' ? 'GlobalAveragePool' : 'GlobalMaxPool', [names.get(value)!])));
  const features = g.apply('Flatten', [pooled.length === 1 ? pooled[0]! : g.apply('Concat', pooled, { axis: { int: 1 } })]);
  g.output(features, 'features', 'float32', ['n', plan.featureDim]);
  return g;
}

/** HWC images mirrored left-right (bytes, before any scaling, so mirrored features equal features of mirrored posters). */
function mirrored(pixels: Uint8Array, width: number, channels: number): Uint8Array {
  const out = new Uint8Array(pixels.length);
  const row = width * channels;
  for (let start = 0; start < pixels.length; start += row) {
    for (let x = 0; x < width; x++) out.set(pixels.subarray(start + x * channels, start + (x + 1) * channels), start + (width - 1 - x) * channels);
  }
  return out;
}

/** The plan on onnxruntime-node (CPU), compiled once; `run` blocks its thread while it computes. */
export async function onnxTrunk(plan: TrunkPlan, options: { threads: number }): Promise<TrunkExecutor> {
  const session = await OnnxSession.create(trunkOnnxGraph(plan).encode(), { threads: options.threads });
  const { height, width, channels } = plan.input;
  return {
    runtime: encoderRuntimeLabel('onnxruntime'),
    async run(pixels, flip) {
      const n = pixels.length / (height * width * channels);
      const data = flip ? mirrored(pixels, width, channels) : pixels;
      const { features } = await session.run({ pixels: { type: 'uint8', data, dims: [n, height, width, channels] } });
      return features!.data;
    },
    dispose: () => void session.release(),
  };
}
