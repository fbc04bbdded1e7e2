import * as tf from '@tensorflow/tfjs';
import { FastBiLSTM, type BiLSTMKernel } from '@filmgenre/model-lstm';

// The reference models of ENGINEERING.md ("Reference models for speed comparison"), built exactly as
// bench/torch_reference.py builds them in PyTorch, so that ms/step compare like for like.
export const GENRES = 25;
export const IMAGE_SIZE = 64;
export const SEQ_LEN = 100;
export const VOCAB = 10_000;

export function buildCnnRef(): tf.LayersModel {
  const layers: tf.layers.Layer[] = [];
  let first = true;
  for (const filters of [32, 64, 128]) {
    for (let i = 0; i < 2; i++) {
      layers.push(
        tf.layers.conv2d({
          ...(first ? { inputShape: [IMAGE_SIZE, IMAGE_SIZE, 3] } : {}),
          filters,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
        }),
      );
      first = false;
    }
    layers.push(tf.layers.maxPooling2d({ poolSize: 2 }));
  }
  layers.push(
    tf.layers.dropout({ rate: 0.3 }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 256, activation: 'relu' }),
    tf.layers.dense({ units: GENRES, activation: 'sigmoid' }),
  );
  return tf.sequential({ layers });
}

/**
 * How lstm-ref's two BiLSTM layers are built: 'fused' and 'ops' are the project's FastBiLSTM (the
 * native fused kernel, or its tfjs-op reference path); 'tfjs' is tfjs's own
 * `bidirectional(lstm)` (recurrent activation hardSigmoid, tfjs's default), what this bench ran
 * before the fused kernel existed. PyTorch's LSTM, like FastBiLSTM, uses sigmoid.
 */
export const LSTM_LAYERS = ['fused', 'ops', 'tfjs'] as const;
export type LstmLayer = (typeof LSTM_LAYERS)[number];

export function buildLstmRef(layer: LstmLayer = 'fused'): tf.LayersModel {
  const biLstm = (units: number, returnSequences: boolean): tf.layers.Layer =>
    layer === 'tfjs'
      ? tf.layers.bidirectional({ layer: tf.layers.lstm({ units, returnSequences }) as tf.RNN })
      : new FastBiLSTM({ units, returnSequences, kernel: layer satisfies BiLSTMKernel });
  return tf.sequential({
    layers: [
      tf.layers.embedding({ inputDim: VOCAB, outputDim: 256, inputLength: SEQ_LEN }),
      biLstm(64, true),
      biLstm(32, false),
      tf.layers.dropout({ rate: 0.3 }),
      tf.layers.dense({ units: GENRES, activation: 'sigmoid' }),
    ],
  });
}

export const MODELS = {
  'cnn-ref': {
    build: buildCnnRef,
    input: (batch: number) => tf.randomUniform([batch, IMAGE_SIZE, IMAGE_SIZE, 3]),
  },
  'lstm-ref': {
    build: (layer?: LstmLayer) => buildLstmRef(layer),
    input: (batch: number) => tf.randomUniform([batch, SEQ_LEN], 0, VOCAB, 'int32'),
  },
} as const;

export type ModelName = keyof typeof MODELS;
