import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NUM_GENRES } from '@filmgenre/core';
import { openModelDir } from '@filmgenre/model-artifact';
import { loadLexicalClassifier } from '@filmgenre/model-lexical';
import { recipeContext } from '@filmgenre/training/testing';
import { lexicalRecipe, LexicalRecipeOptionsSchema } from './lexical-recipe.js';

const work = mkdtempSync(join(tmpdir(), 'training-text-lexical-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('lexicalRecipe on 300 real films', () => {
  it('cross-fits TF-IDF and regressions over the folds; the shipped model is fitted on every film and reloads', async () => {
    const ctx = await recipeContext({ workDir: work, key: 'lexical', limit: 300 });
    const trained = await lexicalRecipe.train(ctx, LexicalRecipeOptionsSchema.parse({}));
    const artifact = openModelDir(trained.dir);
    expect(artifact.metadata).toMatchObject({ name: 'lexical', kind: 'lexical-classifier', modality: 'text', split: ctx.folds.record });
    expect(Object.keys(artifact.metadata.files).sort()).toEqual(['films.json', 'genre-weights.bin', 'tfidf.json']);
    expect(artifact.films().heldOut).toEqual(ctx.films.map((f) => f.id));
    expect(trained.outOfSample?.report.films).toBe(300);
    expect(trained.thresholds).toHaveLength(NUM_GENRES);

    // Out of fold, a film is scored by regressions that never saw it: they differ from the shipped model's.
    const classifier = await loadLexicalClassifier(trained.dir);
    const overviews = ctx.films.slice(0, 20).map((f) => f.overview);
    const served = await classifier.predict(overviews);
    expect(Array.from(served).every((p) => p > 0 && p < 1)).toBe(true);
    expect(Array.from(served).some((p, i) => Math.abs(p - trained.heldOut.probabilities[i]!) > 1e-3)).toBe(true);
    // Fitted on every film, it ranks a film's own genres above the rest more often than not.
    let above = 0;
    let pairs = 0;
    ctx.films.slice(0, 20).forEach((film, i) => {
      for (let g = 0; g < NUM_GENRES; g++) {
        for (let h = 0; h < NUM_GENRES; h++) {
          if (film.labels[g] !== 1 || film.labels[h] !== 0) continue;
          pairs++;
          if (served[i * NUM_GENRES + g]! > served[i * NUM_GENRES + h]!) above++;
        }
      }
    });
    expect(above / pairs).toBeGreaterThan(0.8);
    classifier.dispose();

    const stop = new AbortController();
    stop.abort();
    await expect(lexicalRecipe.train({ ...ctx, signal: stop.signal }, LexicalRecipeOptionsSchema.parse({}))).rejects.toThrow(/lexical: stopped/);
  }, 300_000);
});
