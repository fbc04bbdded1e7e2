import { describe, expect, it } from 'vitest';
import { CommonFlagsSchema, TuneConfigSchema } from './config.js';
import { RECIPES } from './recipes.js';

describe('the flags common to every recipe', () => {
  it('left out, leave each recipe its own defaults (the shared schema\'s fallbacks once overrode them)', () => {
    const common = Object.fromEntries(Object.entries(CommonFlagsSchema.parse({})).filter(([, v]) => v !== undefined));
    expect(common).toEqual({});
    for (const recipe of RECIPES) expect(recipe.options.parse(common), recipe.key).toEqual(recipe.options.parse({}));
  });

  it('given, reach every recipe', () => {
    const common = CommonFlagsSchema.parse({ thresholds: 'per-genre', patience: 7 });
    for (const recipe of RECIPES) expect(recipe.options.parse(common), recipe.key).toMatchObject({ thresholds: 'per-genre', patience: 7 });
  });
});

describe('tune', () => {
  it('offers every trained model with something to search, from the recipes', () => {
    expect(TuneConfigSchema.shape.model.unwrap().options).toEqual(['cnn', 'inception', 'lstm', 'sentence']);
    expect(TuneConfigSchema.parse({}).model).toBe('lstm');
    expect(() => TuneConfigSchema.parse({ model: 'lexical' })).toThrow();
  });
});
