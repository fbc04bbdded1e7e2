import type { Recipe } from '@filmgenre/training';
import { fusionRecipe } from '@filmgenre/training-fusion';
import { IMAGE_RECIPES } from '@filmgenre/training-image';
import { TEXT_RECIPES } from '@filmgenre/training-text';

/**
 * Every model the trainer can train, in training order (fusion after its members). Each team's
 * list is its own (IMAGE_RECIPES, TEXT_RECIPES); everything else (CLI flags, checkpoints, the report, evaluate,
 * tune) follows from the recipes.
 */
export const RECIPES = [...IMAGE_RECIPES, ...TEXT_RECIPES, fusionRecipe] as unknown as readonly Recipe[];

/** The models `tune` searches: every recipe but those with nothing to tune. */
export const TUNABLE_MODELS = RECIPES.filter((recipe) => recipe.tunable !== false).map((recipe) => recipe.key);

/**
 * What `npx nx train trainer` trains when not told otherwise: the members the fusion default stacks
 * and the fusion (chosen by cross-validation, docs/benchmarks/encoders.md). The BiLSTM (`lstm`) is
 * trained on request: it is no better than the sentence model and cannot be cross-fitted in budget.
 * `inception` and `neighbours` add half a point of micro-F1 to the fusion but cost serving a second
 * trunk pass and a second overview encoding per film (docs/benchmarks/encoders.md): on request too.
 */
export const DEFAULT_MODELS = ['cnn', 'sentence', 'lexical', 'fusion'] as const;
