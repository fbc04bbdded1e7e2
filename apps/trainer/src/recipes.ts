import type { Recipe } from '@filmgenre/training';
import { fusionRecipe } from '@filmgenre/training-fusion';
import { posterRecipe } from '@filmgenre/training-image';
import { overviewRecipe } from '@filmgenre/training-text';

/**
 * Every model the trainer can train, in training order (fusion after its members). A modality team
 * adds its model with one package and one line here; everything else (CLI flags, checkpoints, the
 * report, evaluate) follows from the recipe.
 */
export const RECIPES: readonly Recipe[] = [
  posterRecipe,
  overviewRecipe,
  fusionRecipe,
] as unknown as readonly Recipe[];
