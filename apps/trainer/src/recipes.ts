import type { Recipe } from '@filmgenre/training';
import { fusionRecipe } from '@filmgenre/training-fusion';
import { posterRecipe } from '@filmgenre/training-image';
import { lexicalRecipe, neighboursRecipe, overviewRecipe, sentenceRecipe } from '@filmgenre/training-text';

/**
 * Every model the trainer can train, in training order (fusion after its members). A modality team
 * adds its model with one package and one line here; everything else (CLI flags, checkpoints, the
 * report, evaluate) follows from the recipe.
 */
export const RECIPES: readonly Recipe[] = [
  posterRecipe,
  overviewRecipe,
  sentenceRecipe,
  lexicalRecipe,
  neighboursRecipe,
  fusionRecipe,
] as unknown as readonly Recipe[];

/**
 * What `npx nx train trainer` trains when not told otherwise: the members the fusion default stacks
 * and the fusion (chosen by cross-validation, docs/benchmarks/encoders.md). The BiLSTM (`lstm`) is
 * trained on request: it is no better than the sentence model and cannot be cross-fitted in budget.
 */
export const DEFAULT_MODELS = ['cnn', 'sentence', 'lexical', 'neighbours', 'fusion'] as const;
