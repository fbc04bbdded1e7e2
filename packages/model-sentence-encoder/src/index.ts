export {
  SentenceEncoder, splitIntoWindows, useLitePackageDir, USE_LITE_PACKAGE, USE_LITE_WINDOW, SENTENCE_EMBEDDING_DIM,
  LONG_TEXT_MODES, DEFAULT_ENCODE_BATCH, MAX_TEXT_PIECES,
  type SentenceEncoderOptions, type SentenceEncoderInfo, type EmbedOptions, type LongTextMode,
} from './encoder.js';
export {
  saveSentenceClassifier, loadSentenceClassifier, createSentenceHead, sentencePreprocessing, sentenceClassifierKind,
  SENTENCE_CLASSIFIER_KIND, ENCODER_DIR, SENTENCE_PREDICT_BATCH, type SentencePreprocessing,
} from './classifier.js';
export {
  neighbourIndex, neighbourVotes, saveSentenceNeighbours, loadSentenceNeighbours, sentenceNeighboursKind, NeighbourSettingsSchema,
  SENTENCE_NEIGHBOURS_KIND, NEIGHBOUR_EMBEDDINGS_FILE, NEIGHBOUR_LABELS_FILE,
  type NeighbourIndex, type NeighbourSettings, type NeighboursPreprocessing,
} from './neighbours.js';
