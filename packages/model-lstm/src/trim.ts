import * as tf from '@tensorflow/tfjs';

/**
 * Drops the trailing columns that are padding (id 0) in every row of a [rows, length] batch, keeping
 * at least one column. With padding masked, a BiLSTM gives identical outputs on the trimmed batch,
 * and it runs one step per column: overviews average ~30 tokens of the 100-token sequences.
 */
export function trimTrailingPadding(ids: Int32Array, rows: number, length: number): { ids: Int32Array; length: number } {
  let used = 1;
  for (let r = 0; r < rows; r++) {
    for (let c = length - 1; c >= used; c--) {
      if (ids[r * length + c] !== 0) {
        used = c + 1;
        break;
      }
    }
  }
  if (used === length) return { ids, length };
  const out = new Int32Array(rows * used);
  for (let r = 0; r < rows; r++) out.set(ids.subarray(r * length, r * length + used), r * used);
  return { ids: out, length: used };
}

/** Tokens before the trailing padding of each row of a flat [n, sequenceLength] id matrix. */
export function sequenceLengths(ids: Int32Array, sequenceLength: number): Uint16Array {
  const n = ids.length / sequenceLength;
  const lengths = new Uint16Array(n);
  for (let r = 0; r < n; r++) {
    let c = sequenceLength;
    while (c > 0 && ids[r * sequenceLength + c - 1] === 0) c--;
    lengths[r] = c;
  }
  return lengths;
}

/** The BiLSTM takes any length; models with a fixed input length (the Transformer) need full rows. */
export function acceptsAnyLength(model: tf.LayersModel): boolean {
  return model.inputs[0]!.shape[1] === null;
}

/** Gathers rows of a flat id matrix into one batch, dropping its all-padding tail when the model allows it (identical results: padding is masked). */
export function gatherSequences(ids: Int32Array, rows: readonly number[], sequenceLength: number, trim: boolean): tf.Tensor2D {
  const xs = new Int32Array(rows.length * sequenceLength);
  rows.forEach((r, i) => xs.set(ids.subarray(r * sequenceLength, (r + 1) * sequenceLength), i * sequenceLength));
  const trimmed = trim ? trimTrailingPadding(xs, rows.length, sequenceLength) : { ids: xs, length: sequenceLength };
  return tf.tensor2d(trimmed.ids, [rows.length, trimmed.length], 'int32');
}

/** Predicts in batches of similar length (then restores the order), so short overviews run few steps; n×outputs. */
export async function predictSequences(model: tf.LayersModel, ids: Int32Array, sequenceLength: number, batchSize = 256): Promise<Float32Array> {
  const lengths = sequenceLengths(ids, sequenceLength);
  const order = Array.from(lengths.keys()).sort((a, b) => lengths[a]! - lengths[b]!);
  const outputs = model.outputs[0]!.shape.at(-1) as number;
  const out = new Float32Array(order.length * outputs);
  for (let start = 0; start < order.length; start += batchSize) {
    const rows = order.slice(start, start + batchSize);
    const probs = tf.tidy(() => model.predict(gatherSequences(ids, rows, sequenceLength, acceptsAnyLength(model))) as tf.Tensor);
    const values = (await probs.data()) as Float32Array;
    probs.dispose();
    rows.forEach((r, i) => out.set(values.subarray(i * outputs, (i + 1) * outputs), r * outputs));
  }
  return out;
}
