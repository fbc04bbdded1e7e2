export { fusionRecipe, crossFitFusion, FusionRecipeOptionsSchema, FUSION_WEIGHTINGS, FUSION_RECIPE_KINDS, AUTO_FUSION_KINDS, type FusionRecipeOptions } from './recipe.js';
