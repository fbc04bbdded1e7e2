export { posterRecipe, PosterRecipeOptionsSchema, POSTER_DEFAULTS, type PosterRecipeOptions } from './recipe.js';
