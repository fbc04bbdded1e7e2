import * as tf from '@tensorflow/tfjs';

export interface GatedMultimodalUnitArgs {
  units: number;
  name?: string;
  trainable?: boolean;
}

/**
 * Gated multimodal unit (Arevalo et al., 2017) over two inputs [x_v, x_t]:
 * h_v = tanh(W_v x_v), h_t = tanh(W_t x_t), z = σ(W_z [x_v, x_t]), h = z·h_v + (1 − z)·h_t.
 * z is per hidden unit, so the model learns which modality to trust for each feature.
 */
export class GatedMultimodalUnit extends tf.layers.Layer {
  static readonly className = 'FilmGenreGatedMultimodalUnit';
  readonly units: number;
  private w: Record<string, tf.LayerVariable> = {};

  constructor(args: GatedMultimodalUnitArgs) {
    super({ name: args.name, trainable: args.trainable });
    if (!Number.isInteger(args.units) || args.units <= 0) throw new Error(`GatedMultimodalUnit: units must be a positive integer, got ${args.units}`);
    this.units = args.units;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shapes = inputShape as tf.Shape[];
    if (!Array.isArray(shapes[0]) || shapes.length !== 2) throw new Error('GatedMultimodalUnit takes two inputs: [image features, text features]');
    const dv = shapes[0].at(-1);
    const dt = (shapes[1] as tf.Shape).at(-1);
    if (dv == null || dt == null) throw new Error('GatedMultimodalUnit needs known feature sizes');
    const glorot = () => tf.initializers.glorotUniform({});
    this.w.imageKernel = this.addWeight('image_kernel', [dv, this.units], 'float32', glorot());
    this.w.imageBias = this.addWeight('image_bias', [this.units], 'float32', tf.initializers.zeros());
    this.w.textKernel = this.addWeight('text_kernel', [dt, this.units], 'float32', glorot());
    this.w.textBias = this.addWeight('text_bias', [this.units], 'float32', tf.initializers.zeros());
    this.w.gateKernel = this.addWeight('gate_kernel', [dv + dt, this.units], 'float32', glorot());
    this.w.gateBias = this.addWeight('gate_bias', [this.units], 'float32', tf.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return [(inputShape as tf.Shape[])[0]![0]!, this.units];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [xv, xt] = inputs as tf.Tensor[];
      const v = (n: string) => this.w[n]!.read();
      const hv = tf.tanh(tf.add(tf.matMul(xv!, v('imageKernel')), v('imageBias')));
      const ht = tf.tanh(tf.add(tf.matMul(xt!, v('textKernel')), v('textBias')));
      const z = tf.sigmoid(tf.add(tf.matMul(tf.concat([xv!, xt!], 1), v('gateKernel')), v('gateBias')));
      return tf.add(tf.mul(z, hv), tf.mul(tf.sub(1, z), ht));
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), units: this.units };
  }
}
tf.serialization.registerClass(GatedMultimodalUnit);
