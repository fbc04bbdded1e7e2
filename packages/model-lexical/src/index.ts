export { TfidfVectorizer, TfidfSettingsSchema, TfidfJsonSchema, TFIDF_FORMAT, ngramsOf, type TfidfSettings, type TfidfJson, type SparseRows } from './tfidf.js';
export { fitGenreLogistic, genreLogits, genreProbabilities, sigmoid, type GenreLogistic, type FitLogisticOptions } from './logistic.js';
export {
  saveLexicalClassifier, loadLexicalClassifier, lexicalClassifierKind, LEXICAL_CLASSIFIER_KIND, TFIDF_FILE, GENRE_WEIGHTS_FILE,
  type LexicalModel, type LexicalPreprocessing,
} from './classifier.js';
