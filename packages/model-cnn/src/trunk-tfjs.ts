import * as tf from '@tensorflow/tfjs';
import { pixelsToBatchTensor } from '@filmgenre/data-images';
import { encoderRuntimeLabel } from '@filmgenre/onnx-runtime';
import type { Pads, TrunkExecutor, TrunkPlan, TrunkStep } from './trunk-plan.js';

type ConvStep = Extract<TrunkStep, { op: 'conv' }>;

const samePads = (a: Pads, b: Pads) => a.every((v, i) => v === b[i]);

/**
 * The plan on the active TensorFlow.js backend: one fused convolution per conv step (bias and
 * activation inside it), 'same'/'valid' padding where the pads agree with them, so no batch-norm,
 * activation or pad op runs; each intermediate is freed after its last reader.
 */
export function tfjsTrunk(plan: TrunkPlan): TrunkExecutor {
  const weights = new Map<ConvStep, { filter: tf.Tensor4D; bias: tf.Tensor1D }>();
  for (const step of plan.steps) {
    if (step.op === 'conv') weights.set(step, { filter: tf.tensor4d(step.kernel, step.kernelShape), bias: tf.tensor1d(step.bias) });
  }
  const lastUse = new Map<string, number>();
  plan.steps.forEach((step, i) => {
    for (const input of 'inputs' in step ? step.inputs : [step.input]) lastUse.set(input, i);
  });
  for (const { value } of plan.outputs) lastUse.set(value, Infinity);
  const { height, width, scale, offset } = plan.input;

  const conv = (step: ConvStep, x: tf.Tensor4D): tf.Tensor4D => {
    const { filter, bias } = weights.get(step)!;
    const [t, l, b, r] = step.pads;
    const common = { filter, bias, strides: step.strides, dilations: step.dilations, activation: step.activation };
    const pad = step.pads.every((v) => v === 0) ? 'valid' : samePads(step.pads, step.samePads) ? 'same' : undefined;
    if (!step.depthwise) return tf.fused.conv2d({ x, ...common, pad: pad ?? [[0, 0], [t, b], [l, r], [0, 0]] });
    if (pad) return tf.fused.depthwiseConv2d({ x, ...common, pad });
    // Depthwise takes no explicit pads: pad first (no trunk shipped today needs this).
    return tf.tidy(() => tf.fused.depthwiseConv2d({ x: tf.pad(x, [[0, 0], [t, b], [l, r], [0, 0]]), ...common, pad: 'valid' }));
  };

  const forward = (x: tf.Tensor4D): tf.Tensor2D => {
    const values = new Map<string, tf.Tensor4D>([['input', x]]);
    try {
      plan.steps.forEach((step, i) => {
        const read = (v: string) => values.get(v)!;
        let out: tf.Tensor4D;
        if (step.op === 'conv') out = conv(step, read(step.input));
        else if (step.op === 'add') out = tf.tidy(() => step.inputs.slice(1).reduce((sum, v) => tf.add(sum, read(v)), read(step.inputs[0]!)));
        else if (step.op === 'concat') out = tf.concat(step.inputs.map(read), 3);
        else out = (step.op === 'maxPool' ? tf.maxPool : tf.avgPool)(read(step.input), step.size, step.strides, step.padding);
        values.set(step.output, out);
        for (const input of 'inputs' in step ? step.inputs : [step.input]) {
          if (lastUse.get(input) === i && input !== 'input') {
            values.get(input)!.dispose();
            values.delete(input);
          }
        }
      });
      return tf.tidy(() => {
        const parts = plan.outputs.flatMap(({ value }) => plan.pooling.map((p) => (p === 'mean' ? tf.mean(values.get(value)!, [1, 2]) : tf.max(values.get(value)!, [1, 2])) as tf.Tensor2D));
        return parts.length === 1 ? parts[0]! : tf.concat(parts, 1);
      });
    } finally {
      for (const [name, t] of values) if (name !== 'input') t.dispose();
    }
  };

  return {
    runtime: encoderRuntimeLabel('tfjs', tf.getBackend()),
    async run(pixels, flip) {
      // data-images' one conversion to [0,1] (and mirroring), then the trunk's input range.
      const x = tf.tidy(() => {
        const unit = pixelsToBatchTensor(pixels, { width, height }, { flip });
        return tf.add(tf.mul(unit, scale), offset) as tf.Tensor4D;
      });
      try {
        const features = forward(x);
        try {
          return (await features.data()) as Float32Array;
        } finally {
          features.dispose();
        }
      } finally {
        x.dispose();
      }
    },
    dispose: () => {
      for (const { filter, bias } of weights.values()) tf.dispose([filter, bias]);
    },
  };
}
