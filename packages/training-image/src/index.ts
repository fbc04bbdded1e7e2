export {
  IMAGE_RECIPES, inceptionRecipe, InceptionRecipeOptionsSchema, posterRecipe, PosterRecipeOptionsSchema, POSTER_DEFAULTS, type PosterRecipeOptions,
} from './recipe.js';
