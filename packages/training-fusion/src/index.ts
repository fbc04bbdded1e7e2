export { fusionRecipe, FusionRecipeOptionsSchema, FUSION_WEIGHTINGS, type FusionRecipeOptions } from './recipe.js';
