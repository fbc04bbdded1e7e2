import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NUM_GENRES } from '@filmgenre/core';
import { openModelDir } from '@filmgenre/model-artifact';
import { loadSentenceNeighbours } from '@filmgenre/model-sentence-encoder';
import { recipeContext } from '@filmgenre/training/testing';
import { neighboursRecipe, NeighboursRecipeOptionsSchema } from './neighbours-recipe.js';

const work = mkdtempSync(join(tmpdir(), 'training-text-neighbours-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('neighboursRecipe on 200 real films', () => {
  it('votes on each fold with the other folds only; the shipped index holds every film and reloads', async () => {
    const ctx = await recipeContext({ workDir: work, key: 'neighbours', limit: 200 });
    const trained = await neighboursRecipe.train(ctx, NeighboursRecipeOptionsSchema.parse({}));
    const artifact = openModelDir(trained.dir);
    expect(artifact.metadata).toMatchObject({ name: 'neighbours', kind: 'sentence-neighbours', modality: 'text', split: ctx.folds.record });
    expect(Object.keys(artifact.metadata.files).filter((f) => !f.startsWith('encoder/')).sort()).toEqual(['films.json', 'neighbour-embeddings.bin', 'neighbour-labels.bin']);
    expect(artifact.films().heldOut).toEqual(ctx.films.map((f) => f.id));
    expect(trained.outOfSample?.report.films).toBe(200);
    expect(trained.thresholds).toHaveLength(NUM_GENRES);

    // Served, a training film finds itself (similarity 1, the largest weight): its own genres win.
    // Out of fold it could not, so the two differ.
    const classifier = await loadSentenceNeighbours(trained.dir);
    const films = ctx.films.slice(0, 20);
    const served = await classifier.predict(films.map((f) => f.overview));
    expect(Array.from(served).some((p, i) => Math.abs(p - trained.heldOut.probabilities[i]!) > 1e-3)).toBe(true);
    films.forEach((film, i) => {
      const row = served.subarray(i * NUM_GENRES, (i + 1) * NUM_GENRES);
      const best = row.indexOf(Math.max(...row));
      expect(film.labels[best]).toBe(1);
    });
    classifier.dispose();

    const stop = new AbortController();
    stop.abort();
    await expect(neighboursRecipe.train({ ...ctx, signal: stop.signal }, NeighboursRecipeOptionsSchema.parse({}))).rejects.toThrow(/neighbours: stopped/);
  }, 300_000);
});
