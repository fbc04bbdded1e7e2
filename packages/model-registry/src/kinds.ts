import type { ModelKind } from '@filmgenre/model-artifact';
import { posterClassifierKind } from '@filmgenre/model-cnn';
import { fusionClassifierKind } from '@filmgenre/model-fusion';
import { lexicalClassifierKind } from '@filmgenre/model-lexical';
import { overviewClassifierKind } from '@filmgenre/model-lstm';
import { sentenceClassifierKind, sentenceNeighboursKind } from '@filmgenre/model-sentence-encoder';

/** Every kind of model directory this product can load: a new model package adds one line here. */
export const MODEL_KINDS: readonly ModelKind[] = [
  posterClassifierKind,
  overviewClassifierKind,
  sentenceClassifierKind,
  lexicalClassifierKind,
  sentenceNeighboursKind,
  fusionClassifierKind,
];
