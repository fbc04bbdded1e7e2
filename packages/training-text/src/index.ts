export { overviewRecipe, OverviewRecipeOptionsSchema, OVERVIEW_DEFAULTS, OVERVIEW_EMBEDDINGS, type OverviewRecipeOptions } from './recipe.js';
