export {
  ModelMetadataSchema, MemberRecordSchema, METADATA_JSON, MODEL_DIR_FORMAT, MODALITIES,
  type ModelMetadata, type ModelMetadataInput, type MemberRecord, type Modality,
} from './metadata.js';
export { ModelDirError } from './errors.js';
export {
  saveModelDir, openModelDir, readModelMetadata, artifactDigest, MODEL_JSON, WEIGHTS_BIN,
  type SaveModelDirOptions, type ModelDir,
} from './model-dir.js';
export { FILMS_JSON, type FilmsRecord } from './films.js';
export { provenance, packageVersions, gitCommit, type Provenance } from './provenance.js';
export { decide, assertFinite, NonFiniteOutputError, type GenreDecision } from './decide.js';
export type { ModalityOutput, Classifier, ImageClassifier, TextClassifier, FusionClassifier, AnyClassifier, ModelKind } from './contracts.js';
export { compileFeatureHeads, baggedHeadsOf, baggedHeadsGraph, type FeatureHeads } from './heads.js';
