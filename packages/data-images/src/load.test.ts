import { copyFile, readdir, utimes, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePoster } from './decode.js';
import { loadPosterSet, type PosterSource } from './load.js';
import { findDatasetDir } from '@filmgenre/core';
import { tempDir } from './test-helpers.js';

const datasetDir = findDatasetDir();
const IDS = ['tt0084058', 'tt0084867', 'tt0085121', 'tt0085154', 'tt0085159', 'tt0085208'];

describe.skipIf(!datasetDir)('loadPosterSet with its cache', () => {
  const tmp = tempDir('load-test');
  const cacheDir = join(tmp.dir, 'cache');
  let films: PosterSource[];
  let expected: Map<string, Uint8Array>;

  beforeAll(async () => {
    const available = new Set(await readdir(join(datasetDir!, 'Images')));
    const ids = IDS.filter((id) => available.has(`${id}.jpg`));
    expect(ids.length).toBe(IDS.length);
    // A temp copy of a few real posters; one is then truncated, and one film points at no file.
    films = [];
    for (const [k, id] of ids.entries()) {
      const path = join(tmp.dir, `${id}.jpg`);
      await copyFile(join(datasetDir!, 'Images', `${id}.jpg`), path);
      films.push({ id, posterPath: path, labels: Uint8Array.from({ length: 25 }, (_, g) => (g === k ? 1 : 0)) });
    }
    const corrupt = films[2]!.posterPath;
    const bytes = await readFile(corrupt);
    await writeFile(corrupt, bytes.subarray(0, 700));
    films.push({ id: 'tt9999999', posterPath: join(tmp.dir, 'tt9999999.jpg'), labels: new Uint8Array(25) });
    expected = new Map();
    for (const film of films) {
      const px = await decodePoster(film.posterPath).catch(() => undefined);
      if (px) expected.set(film.id, px);
    }
  });
  afterAll(tmp.cleanup);

  it('decodes cold, skips and reports the corrupt and the missing poster', async () => {
    const progress: number[] = [];
    const set = await loadPosterSet(films, { cacheDir, concurrency: 2, onProgress: (p) => progress.push(p.done) });
    expect(set.size).toBe(64);
    expect(set.ids).toEqual([IDS[0], IDS[1], IDS[3], IDS[4], IDS[5]]);
    expect(set.filmIndices).toEqual([0, 1, 3, 4, 5]);
    expect(set.bad.map((b) => b.id)).toEqual([IDS[2], 'tt9999999']);
    expect(set.bad[0]!.reason).toContain(films[2]!.posterPath);
    expect(set.bad[1]!.reason).toContain('tt9999999.jpg');
    expect(set.bad[1]!.reason).toContain('not found');
    expect(set.stats).toMatchObject({ total: 7, cacheHits: 0, decoded: 5, cacheWriteErrors: 0 });
    expect(progress.at(-1)).toBe(7);
    expect(set.pixels.length).toBe(5 * 64 * 64 * 3);
    set.ids.forEach((id, k) => expect(Buffer.compare(set.pixels.subarray(k * 12288, (k + 1) * 12288), expected.get(id)!), id).toBe(0));
    // Labels follow the kept films: film k has genre k set.
    expect(set.labels.length).toBe(5 * 25);
    set.filmIndices.forEach((i, k) => expect(Array.from(set.labels.subarray(k * 25, k * 25 + 25))).toEqual(Array.from(films[i]!.labels!)));
  });

  it('serves a warm run entirely from the cache, byte for byte', async () => {
    const cold = await loadPosterSet(films, { cacheDir: false });
    const warm = await loadPosterSet(films, { cacheDir });
    expect(warm.stats).toMatchObject({ cacheHits: 5, decoded: 0 });
    expect(warm.ids).toEqual(cold.ids);
    expect(Buffer.compare(warm.pixels, cold.pixels)).toBe(0);
    expect(warm.bad.map((b) => b.id)).toEqual([IDS[2], 'tt9999999']);
    // Writes are atomic: no temp file is left behind.
    const leftovers = (await readdir(cacheDir, { recursive: true })).filter((f) => String(f).endsWith('.tmp'));
    expect(leftovers).toEqual([]);
  });

  it('re-decodes only a poster whose mtime changed, and only the missing target size', async () => {
    const later = new Date(Date.now() + 5_000);
    await utimes(films[0]!.posterPath, later, later);
    const run = await loadPosterSet(films, { cacheDir });
    expect(run.stats).toMatchObject({ cacheHits: 4, decoded: 1 });
    const again = await loadPosterSet(films, { cacheDir });
    expect(again.stats).toMatchObject({ cacheHits: 5, decoded: 0 });
    const small = await loadPosterSet(films, { cacheDir, size: 16 });
    expect(small.stats).toMatchObject({ cacheHits: 0, decoded: 5 });
    expect(small.pixels.length).toBe(5 * 16 * 16 * 3);
  });

  it('stops on abort', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(loadPosterSet(films, { cacheDir: false, signal: controller.signal })).rejects.toThrow(/abort/i);
  });
});

describe.skipIf(!datasetDir)('posterThumbnailDataUri', () => {
  it('gives a small JPEG data URI of a real poster, and undefined for a missing file', async () => {
    const { posterThumbnailDataUri } = await import('./thumbnail.js');
    const uri = await posterThumbnailDataUri(join(datasetDir!, 'Images', `${IDS[0]}.jpg`), { width: 40 });
    expect(uri).toMatch(/^data:image\/jpeg;base64,\/9j\//);
    const bytes = Buffer.from(uri!.split(',')[1]!, 'base64');
    expect(bytes.byteLength).toBeLessThan(5_000);
    expect(await posterThumbnailDataUri(join(datasetDir!, 'Images', 'tt0000000.jpg'))).toBeUndefined();
  });
});
