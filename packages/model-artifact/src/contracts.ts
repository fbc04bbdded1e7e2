import type { ModelMetadata, Modality } from './metadata.js';

/** One model's outputs for n inputs: n×genres probabilities and n×featureDim features, row-major. */
export interface ModalityOutput {
  probabilities: Float32Array;
  features: Float32Array;
  featureDim: number;
}

/** A single-modality model: posters (decoded RGB uint8, see ImageClassifier) or overviews (strings). */
export interface Classifier<Input> {
  readonly metadata: ModelMetadata;
  predict(inputs: Input[]): Promise<Float32Array>;
  /** Probabilities plus the features a fusion model consumes. */
  predictWithFeatures(inputs: Input[]): Promise<ModalityOutput>;
  dispose(): void;
}

/** Posters decoded to inputWidth × inputHeight RGB uint8, HWC (data-images' decodePoster with that width and height). */
export interface ImageClassifier extends Classifier<Uint8Array> {
  readonly inputWidth: number;
  readonly inputHeight: number;
}

export type TextClassifier = Classifier<string>;

/** Combines the outputs of its member models (by key, as recorded in metadata.members) for the same n films. */
export interface FusionClassifier {
  readonly metadata: ModelMetadata;
  readonly members: readonly string[];
  predict(outputs: Readonly<Record<string, ModalityOutput>>): Promise<Float32Array>;
  dispose(): void;
}

export type AnyClassifier = ImageClassifier | TextClassifier | FusionClassifier;

/** What a model package registers: the loader for the directories whose metadata.kind is `kind`. */
export interface ModelKind<M extends Modality = Modality> {
  kind: string;
  modality: M;
  load(dir: string): Promise<M extends 'image' ? ImageClassifier : M extends 'text' ? TextClassifier : FusionClassifier>;
}
