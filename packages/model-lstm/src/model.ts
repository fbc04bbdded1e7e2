import * as tf from '@tensorflow/tfjs';
import { FastBiLSTM } from './bilstm-layer.js';
import { parseOverviewModelOptions, type OverviewModelOptions, type OverviewModelOptionsInput } from './options.js';
import { MaskedMeanPooling, PositionEmbedding, TransformerBlock } from './transformer-layers.js';

/** Name of the layer whose output predictWithFeatures returns (the input of the classification head). */
export const FEATURE_LAYER = 'features';

/**
 * Builds an uncompiled overview model: int32 token ids [batch, sequenceLength] (0 = padding) →
 * numGenres sigmoid probabilities. Padding is masked all the way to the pooled feature vector.
 */
export function createOverviewModel(input: OverviewModelOptionsInput = {}): tf.LayersModel {
  const o = parseOverviewModelOptions(input);
  // Initial weights are copied into the layer's variable when the layer is built; freed below.
  const initial = o.pretrainedEmbeddings ? tf.tensor2d(o.pretrainedEmbeddings, [o.vocabularySize, o.embeddingDim]) : undefined;
  // The BiLSTM accepts any sequence length, so training can drop a batch's trailing all-padding
  // columns (identical results: padding is masked) instead of running 100 steps for ~30 tokens.
  const ids = tf.input({ shape: [o.variant === 'bilstm' ? null : o.sequenceLength], dtype: 'int32', name: 'token_ids' });
  const embedded = tf.layers.embedding({
    inputDim: o.vocabularySize,
    outputDim: o.embeddingDim,
    maskZero: true,
    name: 'embedding',
    ...(initial ? { weights: [initial] } : {}),
  }).apply(ids) as tf.SymbolicTensor;
  const features = o.variant === 'bilstm' ? bilstmTrunk(embedded, o) : transformerTrunk(embedded, o);
  const dropped = tf.layers.dropout({ rate: o.dropout, name: 'dropout' }).apply(features) as tf.SymbolicTensor;
  const probabilities = tf.layers.dense({ units: o.numGenres, activation: 'sigmoid', name: 'genres' }).apply(dropped) as tf.SymbolicTensor;
  const model = tf.model({ inputs: ids, outputs: probabilities, name: `overview_${o.variant}` });
  initial?.dispose();
  return model;
}

function bilstmTrunk(x: tf.SymbolicTensor, o: OverviewModelOptions): tf.SymbolicTensor {
  o.lstmUnits.forEach((units, i) => {
    const last = i === o.lstmUnits.length - 1;
    const name = last ? FEATURE_LAYER : `bilstm_${i + 1}`;
    const layer = o.recurrentLayer === 'fast'
      ? new FastBiLSTM({ units, returnSequences: !last, name })
      : tf.layers.bidirectional({
          layer: tf.layers.lstm({ units, returnSequences: !last, recurrentActivation: 'sigmoid', unitForgetBias: true }) as tf.RNN,
          mergeMode: 'concat',
          name,
        });
    x = layer.apply(x) as tf.SymbolicTensor;
  });
  return x;
}

function transformerTrunk(x: tf.SymbolicTensor, o: OverviewModelOptions): tf.SymbolicTensor {
  x = new PositionEmbedding({ name: 'positions' }).apply(x) as tf.SymbolicTensor;
  for (let i = 0; i < o.transformerBlocks; i++) {
    x = new TransformerBlock({ heads: o.attentionHeads, feedForwardDim: o.feedForwardDim, name: `transformer_${i + 1}` }).apply(x) as tf.SymbolicTensor;
  }
  return new MaskedMeanPooling({ name: FEATURE_LAYER }).apply(x) as tf.SymbolicTensor;
}
