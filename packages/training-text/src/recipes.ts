import { neighboursRecipe } from './neighbours-recipe.js';
import { lexicalRecipe } from './lexical-recipe.js';
import { overviewRecipe } from './recipe.js';
import { sentenceRecipe } from './sentence-recipe.js';

/** The text team's recipes, in training order: the trainer registers every one, so a new text model is one more entry here. */
export const TEXT_RECIPES = [overviewRecipe, sentenceRecipe, lexicalRecipe, neighboursRecipe] as const;
