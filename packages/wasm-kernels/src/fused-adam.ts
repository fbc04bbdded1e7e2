import * as tf from '@tensorflow/tfjs';
import { FUSED_ADAM_UPDATE, type FusedAdamUpdateAttrs } from './kernels/FusedAdamUpdate.js';

/** A tensor and the name it is saved under (tfjs-core's NamedTensor, which tfjs does not re-export). */
type NamedTensor = Awaited<ReturnType<tf.Optimizer['saveIterations']>>;

interface MomentVariable {
  /** `${variable name}/m` or `/v`: the names tfjs's AdamOptimizer saves its moments under. */
  originalName: string;
  variable: tf.Variable;
}

/**
 * Adam (Kingma & Ba), the same algorithm, defaults, saved weights and config as
 * `tf.train.adam`, with each variable's update done by one fused kernel where the backend has it
 * (wasm, after registerWasmTrainingKernels) and by tfjs ops elsewhere (tfjs-node, cpu). Checkpoints
 * move freely between the two: the moments are saved under tfjs's names, in its order.
 */
export class FusedAdamOptimizer extends tf.Optimizer {
  static get className(): string {
    return 'Adam';
  }

  private firstMoments: MomentVariable[] = [];
  private secondMoments: MomentVariable[] = [];

  constructor(
    readonly learningRate: number,
    readonly beta1: number,
    readonly beta2: number,
    readonly epsilon: number,
  ) {
    super();
  }

  applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    const fused = tf.getKernel(FUSED_ADAM_UPDATE, tf.getBackend()) !== undefined;
    // Bias corrections of this step t = iterations + 1, as tfjs's accBeta variables hold them.
    const t = this.iterations + 1;
    const attrs: FusedAdamUpdateAttrs = {
      learningRate: this.learningRate,
      beta1: this.beta1,
      beta2: this.beta2,
      epsilon: this.epsilon,
      biasCorrection1: 1 - this.beta1 ** t,
      biasCorrection2: 1 - this.beta2 ** t,
    };
    tf.tidy(() => {
      names.forEach((name, i) => {
        const value = tf.engine().registeredVariables[name];
        if (!value) throw new Error(`FusedAdamOptimizer: no variable named ${name}`);
        this.firstMoments[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        this.secondMoments[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
        const gradient = Array.isArray(variableGradients) ? variableGradients[i]!.tensor : variableGradients[name];
        if (gradient == null) return;
        const m = this.firstMoments[i]!.variable;
        const v = this.secondMoments[i]!.variable;
        const [newValue, newM, newV] = fused
          ? (tf.engine().runKernel(FUSED_ADAM_UPDATE, { value, m, v, gradient }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[])
          : adamWithOps(value, m, v, gradient, attrs);
        m.assign(newM!);
        v.assign(newV!);
        value.assign(newValue!);
      });
    });
    this.incrementIterations();
  }

  override dispose(): void {
    tf.dispose([...this.firstMoments, ...this.secondMoments].map((v) => v.variable));
  }

  override async getWeights(): Promise<NamedTensor[]> {
    return [await this.saveIterations(), ...[...this.firstMoments, ...this.secondMoments].map((v) => ({ name: v.originalName, tensor: v.variable }))];
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const moments = await this.extractIterations(weightValues);
    const count = moments.length / 2;
    const toVariable = (w: NamedTensor): MomentVariable => ({ originalName: w.name, variable: w.tensor.variable(false) });
    tf.dispose([...this.firstMoments, ...this.secondMoments].map((v) => v.variable));
    this.firstMoments = moments.slice(0, count).map(toVariable);
    this.secondMoments = moments.slice(count, 2 * count).map(toVariable);
  }

  getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }
}

/** tfjs's AdamOptimizer update, op for op (the path on backends without the fused kernel). */
function adamWithOps(value: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, a: FusedAdamUpdateAttrs): tf.Tensor[] {
  const newM = tf.add(tf.mul(m, a.beta1), tf.mul(g, 1 - a.beta1));
  const newV = tf.add(tf.mul(v, a.beta2), tf.mul(tf.square(g), 1 - a.beta2));
  const mHat = tf.div(newM, a.biasCorrection1);
  const vHat = tf.div(newV, a.biasCorrection2);
  const newValue = tf.add(tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), a.epsilon)), -a.learningRate), value);
  return [newValue, newM, newV];
}

/** Like `tf.train.adam(learningRate, beta1, beta2, epsilon)`, with the fused update where it runs. */
export function fusedAdam(learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon?: number): FusedAdamOptimizer {
  return new FusedAdamOptimizer(learningRate, beta1, beta2, epsilon ?? tf.backend().epsilon());
}
