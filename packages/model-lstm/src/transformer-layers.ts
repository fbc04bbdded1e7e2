import * as tf from '@tensorflow/tfjs';

type Kwargs = { mask?: tf.Tensor | tf.Tensor[] | null; training?: boolean };
const firstShape = (s: tf.Shape | tf.Shape[]) => (Array.isArray(s[0]) ? s[0] : s) as tf.Shape;
const firstTensor = (x: tf.Tensor | tf.Tensor[]) => (Array.isArray(x) ? x[0]! : x);
// tfjs types computeMask as non-null, but null (no mask) is what its own layers return.
const passMask = (m?: tf.Tensor | tf.Tensor[]) => ((Array.isArray(m) ? m[0] : m) ?? null) as unknown as tf.Tensor;
const firstMask = (m: Kwargs['mask']) => (Array.isArray(m) ? m[0] : m) ?? null;

/** Adds a learned vector per position to token embeddings; passes the padding mask on. */
export class PositionEmbedding extends tf.layers.Layer {
  static readonly className = 'FilmGenrePositionEmbedding';
  private positions!: tf.LayerVariable;

  constructor(args: { name?: string; trainable?: boolean } = {}) {
    super({ name: args.name, trainable: args.trainable });
    this.supportsMasking = true;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const [, length, dim] = firstShape(inputShape);
    if (length == null || dim == null) throw new Error('PositionEmbedding needs a known sequence length and dimension');
    this.positions = this.addWeight('positions', [length, dim], 'float32', tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05 }));
    this.built = true;
  }

  override computeMask(_inputs: tf.Tensor | tf.Tensor[], mask?: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return passMask(mask);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.add(firstTensor(inputs), this.positions.read()));
  }
}
tf.serialization.registerClass(PositionEmbedding);

export interface TransformerBlockArgs {
  heads: number;
  feedForwardDim: number;
  name?: string;
  trainable?: boolean;
}

/**
 * One post-norm Transformer encoder block: multi-head self-attention whose keys at padded positions
 * are masked out, residual + layer norm, ReLU feed-forward, residual + layer norm. tfjs layers has no
 * MultiHeadAttention, hence one custom layer holding all of the block's weights.
 */
export class TransformerBlock extends tf.layers.Layer {
  static readonly className = 'FilmGenreTransformerBlock';
  readonly heads: number;
  readonly feedForwardDim: number;
  private w: Record<string, tf.LayerVariable> = {};

  constructor(args: TransformerBlockArgs) {
    super({ name: args.name, trainable: args.trainable });
    this.heads = args.heads;
    this.feedForwardDim = args.feedForwardDim;
    this.supportsMasking = true;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const dim = firstShape(inputShape).at(-1);
    if (dim == null) throw new Error('TransformerBlock needs a known model dimension');
    if (dim % this.heads !== 0) throw new Error(`TransformerBlock: ${this.heads} heads do not divide dimension ${dim}`);
    const glorot = () => tf.initializers.glorotUniform({});
    const add = (name: string, shape: number[], init: ReturnType<typeof tf.initializers.zeros>) => {
      this.w[name] = this.addWeight(name, shape, 'float32', init);
    };
    for (const name of ['query', 'key', 'value', 'output']) {
      add(`${name}_kernel`, [dim, dim], glorot());
      add(`${name}_bias`, [dim], tf.initializers.zeros());
    }
    add('ff1_kernel', [dim, this.feedForwardDim], glorot());
    add('ff1_bias', [this.feedForwardDim], tf.initializers.zeros());
    add('ff2_kernel', [this.feedForwardDim, dim], glorot());
    add('ff2_bias', [dim], tf.initializers.zeros());
    for (const ln of ['norm1', 'norm2']) {
      add(`${ln}_gamma`, [dim], tf.initializers.ones());
      add(`${ln}_beta`, [dim], tf.initializers.zeros());
    }
    this.built = true;
  }

  override computeMask(_inputs: tf.Tensor | tf.Tensor[], mask?: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return passMask(mask);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = firstTensor(inputs) as tf.Tensor3D;
      const [batch, length, dim] = x.shape;
      const headDim = dim / this.heads;
      const v = (n: string) => this.w[n]!.read();
      const dense = (t: tf.Tensor, name: string) =>
        tf.add(tf.matMul(tf.reshape(t, [-1, t.shape.at(-1)!]), v(`${name}_kernel`)), v(`${name}_bias`));
      // [B, L, D] → [B, H, L, D/H]
      const split = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [batch, length, this.heads, headDim]), [0, 2, 1, 3]);
      const q = split(dense(x, 'query'));
      const k = split(dense(x, 'key'));
      const val = split(dense(x, 'value'));
      let scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(headDim)); // [B, H, L, L]
      const mask = firstMask(kwargs.mask);
      if (mask) {
        // Padded keys get -1e9 before the softmax: no query attends to padding.
        const keep = tf.reshape(tf.cast(mask, 'float32'), [batch, 1, 1, length]);
        scores = tf.add(scores, tf.mul(tf.sub(1, keep), -1e9));
      }
      const attended = tf.matMul(tf.softmax(scores), val); // [B, H, L, D/H]
      const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [batch * length, dim]);
      const attention = tf.reshape(dense(merged, 'output'), [batch, length, dim]);
      const h1 = this.layerNorm(tf.add(x, attention), 'norm1');
      const ff = dense(tf.relu(dense(h1, 'ff1')), 'ff2');
      return this.layerNorm(tf.add(h1, tf.reshape(ff, [batch, length, dim])), 'norm2');
    });
  }

  private layerNorm(x: tf.Tensor, name: string): tf.Tensor {
    const { mean, variance } = tf.moments(x, -1, true);
    const normed = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-6)));
    return tf.add(tf.mul(normed, this.w[`${name}_gamma`]!.read()), this.w[`${name}_beta`]!.read());
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), heads: this.heads, feedForwardDim: this.feedForwardDim };
  }
}
tf.serialization.registerClass(TransformerBlock);

/** Mean over the non-padded positions: [B, L, D] → [B, D]. */
export class MaskedMeanPooling extends tf.layers.Layer {
  static readonly className = 'FilmGenreMaskedMeanPooling';

  constructor(args: { name?: string; trainable?: boolean } = {}) {
    super({ name: args.name, trainable: args.trainable });
    this.supportsMasking = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = firstShape(inputShape);
    return [s[0]!, s[2]!];
  }

  override computeMask(): tf.Tensor {
    return null as unknown as tf.Tensor; // pooled: nothing left to mask
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = firstTensor(inputs);
      const mask = firstMask(kwargs.mask);
      if (!mask) return tf.mean(x, 1);
      const m = tf.expandDims(tf.cast(mask, 'float32'), 2); // [B, L, 1]
      // An all-padding text (empty overview) averages nothing: divide by at least 1 to stay finite.
      return tf.div(tf.sum(tf.mul(x, m), 1), tf.maximum(tf.sum(m, 1), 1));
    });
  }
}
tf.serialization.registerClass(MaskedMeanPooling);
