export { tokenize, TOKENIZER_ID } from './tokenize.js';
export {
  TextVectorizer, VectorizerError, TextVectorizerSettingsSchema, TextVectorizerJsonSchema,
  PAD_TOKEN, OOV_TOKEN, PAD_INDEX, OOV_INDEX, VECTORIZER_FORMAT, VECTORIZER_FORMAT_VERSION,
  type TextVectorizerSettings, type TextVectorizerSettingsInput, type TextVectorizerJson, type AdaptStats, type CoverageStats,
} from './vectorizer.js';
export {
  SentencePieceTokenizer, readSentencePieceVocabulary, parseSentencePieceVocabulary, normalizeForSentencePiece, SENTENCEPIECE_TOKENIZER_VERSION,
  WORD_BOUNDARY, UNKNOWN_PIECE_ID, DEFAULT_RESERVED_SYMBOLS, type SentencePieceVocabulary, type SentencePieceOptions,
} from './sentencepiece.js';
