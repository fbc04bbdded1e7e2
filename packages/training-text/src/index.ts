export { overviewRecipe, OverviewRecipeOptionsSchema, OVERVIEW_DEFAULTS, OVERVIEW_EMBEDDINGS, type OverviewRecipeOptions } from './recipe.js';
export { sentenceRecipe, SentenceRecipeOptionsSchema, type SentenceRecipeOptions } from './sentence-recipe.js';
export { lexicalRecipe, LexicalRecipeOptionsSchema, LEXICAL_DEFAULTS, type LexicalRecipeOptions } from './lexical-recipe.js';
export { neighboursRecipe, NeighboursRecipeOptionsSchema, NEIGHBOURS_DEFAULTS, type NeighboursRecipeOptions } from './neighbours-recipe.js';
export { TEXT_RECIPES } from './recipes.js';
