// Builds a real (tiny) models directory for the serving tests: small networks from the model
// packages' own factories, fitted for one epoch on real films of the dataset, saved with the
// packages' own save functions. Small enough to build in seconds, real enough that the whole
// load → decode → predict path runs exactly as in production.
import { GENRES, readDataset, resolveDatasetDir, type Film } from '@filmgenre/core';
import { decodePoster } from '@filmgenre/data-images';
import { TextVectorizer } from '@filmgenre/data-text';
import { createFeatureHead, createPosterCnn, loadPosterClassifier, PosterFeatureExtractor, posterPreprocessing, savePosterClassifier } from '@filmgenre/model-cnn';
import { fitLateFusion, fitStackedFusion, saveFusionClassifier } from '@filmgenre/model-fusion';
import { createOverviewModel, loadOverviewClassifier, saveOverviewClassifier } from '@filmgenre/model-lstm';
import { createSentenceHead, loadSentenceClassifier, saveSentenceClassifier, SentenceEncoder } from '@filmgenre/model-sentence-encoder';
import { artifactDigest, readModelMetadata } from '@filmgenre/model-artifact';
import { fixtureFilms, fixtureMetadata } from '@filmgenre/model-artifact/testing';
import * as tf from '@tensorflow/tfjs';

export const TEST_IMAGE_SIZE = 16;
/** The second fixture's poster model: width × height, 1:2 like the default 128 × 256. */
export const TEST_POSTER_WIDTH = 32;
export const TEST_POSTER_HEIGHT = 64;
// Short sequences and one recurrent layer: the per-call cost of an LSTM grows with steps × layers.
export const TEST_SEQUENCE_LENGTH = 16;

const VOCABULARY_FILMS = 200;
const FIT_FILMS = 32;
/** Films after the fitted ones on which the late fusion's weights and thresholds are tuned. */
const FUSION_FILMS = 48;

/** Films not used for fitting, to send to the server in tests. */
export function heldOutFilms(): Film[] {
  return readDataset(resolveDatasetDir(), { limit: VOCABULARY_FILMS }).films.slice(FIT_FILMS);
}

function metadata(name: string, variant: string, preprocessing: Record<string, unknown>) {
  // Varied thresholds so that both passing and failing genres show up in the answers.
  const thresholds = GENRES.map((_, i) => [0.3, 0.45, 0.5, 0.55][i % 4]!);
  return fixtureMetadata({ name, variant, thresholds, preprocessing, metrics: { note: 'test fixture: one epoch on a handful of films' }, training: { epochs: 1 } });
}

/** What a fusion records of a member: pinned by the digest of its metadata and files. */
function memberRecord(dir: string) {
  const m = readModelMetadata(dir);
  return { kind: m.kind, modality: m.modality as 'image' | 'text', variant: m.variant, digest: artifactDigest(m), createdAt: m.createdAt };
}

function labelMatrix(films: Film[]): Float32Array {
  const y = new Float32Array(films.length * GENRES.length);
  films.forEach((f, i) => y.set(f.labels, i * GENRES.length));
  return y;
}

function labelsTensor(films: Film[]): tf.Tensor2D {
  return tf.tensor2d(labelMatrix(films), [films.length, GENRES.length]);
}

/**
 * Writes cnn/, lstm/ and a late fusion/ into `dir`. Runs on whatever backend is active (the tests use `cpu` for the
 * fit, since the wasm backend lacks some gradients, and then serve on `wasm`).
 */
export async function buildTinyModels(dir: string): Promise<void> {
  const films = readDataset(resolveDatasetDir(), { limit: VOCABULARY_FILMS }).films;
  const fit = films.slice(0, FIT_FILMS);

  // Poster CNN at 16×16.
  const cnn = createPosterCnn({ variant: 'study', imageSize: TEST_IMAGE_SIZE, filters: [4, 8, 8], denseUnits: 16, seed: 1 });
  cnn.compile({ optimizer: tf.train.adam(1e-3), loss: 'binaryCrossentropy' });
  const pixels = await Promise.all(fit.map((f) => decodePoster(f.posterPath, { size: TEST_IMAGE_SIZE })));
  const flat = new Uint8Array(pixels.length * TEST_IMAGE_SIZE * TEST_IMAGE_SIZE * 3);
  pixels.forEach((p, i) => flat.set(p, i * p.length));
  const x = tf.tidy(() => tf.tensor4d(flat, [fit.length, TEST_IMAGE_SIZE, TEST_IMAGE_SIZE, 3], 'int32').toFloat().div(255));
  const y = labelsTensor(fit);
  await cnn.fit(x, y, { epochs: 1, batchSize: 16, verbose: 0 });
  tf.dispose(x);
  await savePosterClassifier(`${dir}/cnn`, { model: cnn, films: fixtureFilms(), metadata: metadata('cnn', 'study', { ...posterPreprocessing(TEST_IMAGE_SIZE) }) });
  cnn.dispose();

  // Overview LSTM with a vocabulary adapted on ~200 real overviews.
  const vectorizer = new TextVectorizer({ maxTokens: 2_000, sequenceLength: TEST_SEQUENCE_LENGTH }).adapt(films.map((f) => f.overview));
  const lstm = createOverviewModel({ vocabularySize: vectorizer.vocabularySize, sequenceLength: TEST_SEQUENCE_LENGTH, embeddingDim: 8, lstmUnits: [8] });
  lstm.compile({ optimizer: tf.train.adam(1e-3), loss: 'binaryCrossentropy' });
  const ids = vectorizer.encodeTensor(fit.map((f) => f.overview));
  await lstm.fit(ids, y, { epochs: 1, batchSize: 16, verbose: 0 });
  tf.dispose([ids, y]);
  await saveOverviewClassifier(`${dir}/lstm`, {
    model: lstm,
    vectorizer,
    films: fixtureFilms(),
    metadata: metadata('lstm', 'bilstm', { sequenceLength: TEST_SEQUENCE_LENGTH, maxTokens: 2_000 }),
  });
  lstm.dispose();

  // Late fusion tuned on the saved models' outputs for the next films, as the trainer does.
  const poster = await loadPosterClassifier(`${dir}/cnn`);
  const overview = await loadOverviewClassifier(`${dir}/lstm`);
  const tune = films.slice(FIT_FILMS, FIT_FILMS + FUSION_FILMS);
  const image = await poster.predictWithFeatures(await Promise.all(tune.map((f) => decodePoster(f.posterPath, { size: TEST_IMAGE_SIZE }))));
  const text = await overview.predictWithFeatures(tune.map((f) => f.overview));
  poster.dispose();
  overview.dispose();
  const late = fitLateFusion({ imageProbs: image.probabilities, textProbs: text.probabilities, labels: labelMatrix(tune), numGenres: GENRES.length });
  await saveFusionClassifier(`${dir}/fusion`, {
    kind: 'late',
    late,
    films: fixtureFilms(),
    metadata: { ...metadata('fusion', 'late', {}), thresholds: [...late.thresholds], members: { cnn: memberRecord(`${dir}/cnn`), lstm: memberRecord(`${dir}/lstm`) } },
  });
}

/**
 * The shape of the default models, tiny: writes cnn/ (a non-square poster model: pooled `block_10`
 * features of the Keras MobileNetV2 shipped in nsfwjs at 32 × 64 + a dense head, the extractor saved
 * inside the directory), sentence/ (Universal Sentence Encoder Lite, shipped inside the directory, +
 * a dense head) and a stacked fusion/ over the two. The heads are fitted for one epoch on a handful
 * of films, the stacker on the saved models' outputs for the next films, as the trainer does. Only
 * dense layers are fitted, so any backend works (the global setup uses wasm: the encoder is slow on cpu).
 */
export async function buildSentenceModels(dir: string): Promise<void> {
  const films = readDataset(resolveDatasetDir(), { limit: VOCABULARY_FILMS }).films;
  const fit = films.slice(0, FIT_FILMS);
  const y = labelsTensor(fit);
  const size = { width: TEST_POSTER_WIDTH, height: TEST_POSTER_HEIGHT };

  const extractor = await PosterFeatureExtractor.create({ trunk: 'mobilenet_v2', nodes: ['block_10'], pooling: ['mean'], inputWidth: size.width, inputHeight: size.height });
  const pixels = await Promise.all(fit.map((f) => decodePoster(f.posterPath, size)));
  const flat = new Uint8Array(pixels.length * size.width * size.height * 3);
  pixels.forEach((p, i) => flat.set(p, i * p.length));
  const features = tf.tensor2d(await extractor.extract(flat), [fit.length, extractor.featureDim]);
  const posterHead = createFeatureHead({ featureDim: extractor.featureDim, hiddenUnits: 16, seed: 1 });
  posterHead.compile({ optimizer: tf.train.adam(1e-3), loss: 'binaryCrossentropy' });
  await posterHead.fit(features, y, { epochs: 1, batchSize: 16, verbose: 0 });
  tf.dispose(features);
  await savePosterClassifier(`${dir}/cnn`, { model: posterHead, featureExtractor: extractor, films: fixtureFilms(), metadata: { ...metadata('cnn', 'pretrained', { ...posterPreprocessing(extractor) }), encoderRuntime: extractor.runtime } });
  posterHead.dispose();
  extractor.dispose();

  const encoder = await SentenceEncoder.load();
  const embedded = await encoder.embed(fit.map((f) => f.overview));
  const sentenceHead = createSentenceHead({ hiddenUnits: 16, dropout: 0.2, seed: 2, name: 'sentence_head' });
  sentenceHead.compile({ optimizer: tf.train.adam(1e-3), loss: 'binaryCrossentropy' });
  const x = tf.tensor2d(embedded, [fit.length, embedded.length / fit.length]);
  await sentenceHead.fit(x, y, { epochs: 1, batchSize: 16, verbose: 0 });
  tf.dispose([x, y]);
  await saveSentenceClassifier(`${dir}/sentence`, { head: sentenceHead, encoder, films: fixtureFilms(), metadata: metadata('sentence', 'use-lite', {}) });
  sentenceHead.dispose();
  encoder.dispose();

  const poster = await loadPosterClassifier(`${dir}/cnn`);
  const overview = await loadSentenceClassifier(`${dir}/sentence`);
  const tune = films.slice(FIT_FILMS, FIT_FILMS + FUSION_FILMS);
  const image = await poster.predict(await Promise.all(tune.map((f) => decodePoster(f.posterPath, size))));
  const text = await overview.predict(tune.map((f) => f.overview));
  poster.dispose();
  overview.dispose();
  const stacked = fitStackedFusion({ members: { cnn: image, sentence: text }, labels: labelMatrix(tune), numGenres: GENRES.length });
  await saveFusionClassifier(`${dir}/fusion`, {
    kind: 'stacked',
    stacked,
    films: fixtureFilms(),
    metadata: { ...metadata('fusion', 'stacked', {}), members: { cnn: memberRecord(`${dir}/cnn`), sentence: memberRecord(`${dir}/sentence`) } },
  });
}
