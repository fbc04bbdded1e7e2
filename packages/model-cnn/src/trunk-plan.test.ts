import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@filmgenre/tf-runtime';
import { readNsfwjsFiles } from './feature-extractor.js';
import { trunkOnnxGraph } from './trunk-onnx.js';
import { tfjsTrunk } from './trunk-tfjs.js';
import { compileTrunk, type TrunkPlan } from './trunk-plan.js';

const compile = (trunk: 'mobilenet_v2' | 'inception_v3', outputs: string[], height = 256, width = 128) =>
  compileTrunk(readNsfwjsFiles(trunk), { outputs, height, width, inputScale: 2, inputOffset: -1, pooling: ['mean', 'max'] });
const ops = (plan: TrunkPlan) => plan.steps.reduce<Record<string, number>>((counts, s) => ({ ...counts, [s.op]: (counts[s.op] ?? 0) + 1 }), {});

beforeAll(async () => {
  await initBackend('wasm', { log: () => {} });
});

describe('compileTrunk: a Keras trunk as what it computes at inference', () => {
  it('MobileNetV2 to block_10: 33 convolutions (batch norm, ReLU6 and zero padding folded in) and 6 residual adds, nothing else', () => {
    // Up to block_10_project_BN the Keras model has 22 Conv2D + 11 DepthwiseConv2D, 33 BatchNormalization, 22 ReLU, 4 ZeroPadding2D, 6 Add.
    const plan = compile('mobilenet_v2', ['block_10_expand_relu', 'block_10_project_BN']);
    expect(ops(plan)).toEqual({ conv: 33, add: 6 });
    const convs = plan.steps.filter((s) => s.op === 'conv');
    expect(convs.filter((s) => s.activation === 'relu6')).toHaveLength(22);
    expect(convs.filter((s) => s.depthwise)).toHaveLength(11);
    // The stride-2 depthwise convolutions read a ZeroPadding2D ((0,1),(0,1)): one pixel at the bottom and right, as TF's 'same'.
    const strided = convs.filter((s) => s.depthwise && s.strides[0] === 2);
    expect(strided).toHaveLength(3);
    for (const s of strided) expect([s.pads, s.samePads]).toEqual([[0, 0, 1, 1], [0, 0, 1, 1]]);
    expect(plan.outputs).toEqual([{ value: 'block_10_expand_relu', channels: 384 }, { value: 'block_10_project_BN', channels: 96 }]);
    expect(plan.featureDim).toBe(960);
    // ONNX: one Conv per step, ReLU6 as Clip (onnxruntime fuses it into the Conv); the input scaled and transposed in the graph.
    expect(trunkOnnxGraph(plan).opCounts()).toEqual({
      Cast: 1, Div: 1, Mul: 1, Add: 7, Transpose: 1, Conv: 33, Clip: 22,
      GlobalAveragePool: 2, GlobalMaxPool: 2, Concat: 1, Flatten: 1, Identity: 1,
    });
  });

  it('InceptionV3 to mixed5: convolutions with batch norm (scale=false) and ReLU folded, pools and concatenations kept', () => {
    const plan = compile('inception_v3', ['mixed5'], 192, 96);
    expect(ops(plan)).toEqual({ conv: 50, maxPool: 3, avgPool: 5, concat: 6 });
    expect(plan.steps.every((s) => s.op !== 'conv' || s.activation === 'relu')).toBe(true);
    // 'same' 1×7 and 7×1 convolutions pad 3 on each side of the one axis.
    const sevens = plan.steps.filter((s) => s.op === 'conv' && s.kernelShape[0] * s.kernelShape[1] === 7);
    expect(sevens.length).toBeGreaterThan(0);
    for (const s of sevens) if (s.op === 'conv') expect(s.pads).toEqual(s.kernelShape[0] === 7 ? [3, 0, 3, 0] : [0, 3, 0, 3]);
    expect(plan.featureDim).toBe(768 * 2);
  });

  it('names the layer it cannot compile, and an output that does not exist', () => {
    expect(() => compile('mobilenet_v2', ['dense_1'])).toThrow(/layer 'flatten_1' \(Flatten\): the trunk compiler does not support this layer class/);
    expect(() => compile('mobilenet_v2', ['block_99'])).toThrow(/layer 'block_99' referenced but not defined/);
  });

  it('on tfjs, runs fused convolutions only: no batch-norm, activation or pad kernel', async () => {
    const plan = compile('mobilenet_v2', ['block_10_expand_relu', 'block_10_project_BN']);
    const trunk = tfjsTrunk(plan);
    try {
      const profile = await tf.profile(() => trunk.run(new Uint8Array(2 * 256 * 128 * 3).fill(100), false));
      const kernels = profile.kernels.map((k) => k.name);
      expect(kernels.filter((k) => k === 'FusedConv2D' || k === 'FusedDepthwiseConv2D')).toHaveLength(33);
      expect(kernels.filter((k) => /BatchNorm|Relu|Clip|Pad/.test(k))).toEqual([]);
    } finally {
      trunk.dispose();
    }
  });
});
