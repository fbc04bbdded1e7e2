import type { ModelKind } from '@filmgenre/model-artifact';
import { posterClassifierKind } from '@filmgenre/model-cnn';
import { fusionClassifierKind } from '@filmgenre/model-fusion';
import { overviewClassifierKind } from '@filmgenre/model-lstm';

/** Every kind of model directory this product can load: a new model package adds one line here. */
export const MODEL_KINDS: readonly ModelKind[] = [
  posterClassifierKind,
  overviewClassifierKind,
  fusionClassifierKind,
];
