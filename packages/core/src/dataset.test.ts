import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSV_FILE, DatasetError, formatBadRows, readDataset, resolveDatasetDir } from './dataset.js';
import { GENRES, genresOf } from './genres.js';

const realDir = resolveDatasetDir();

describe('readDataset on the real dataset', () => {
  const dataset = readDataset(realDir);

  it('reads every film, each with its poster and 0/1 labels', () => {
    expect(dataset.summary).toMatchObject({ rows: 5375, usable: 5375, bad: 0 });
    expect(dataset.films).toHaveLength(5375);
    const first = dataset.films[0]!;
    expect(first.id).toBe('tt0086425');
    expect(first.line).toBe(2);
    expect(genresOf(first.labels)).toEqual(['Comedy', 'Drama']);
    expect(first.overview).toBe("Follows hard-to-please Aurora looking for love, and her daughter's family problems.");
    expect(first.posterPath.endsWith('Images/tt0086425.jpg')).toBe(true);
  });

  it('parses quoted overviews with commas, quotes and non-ASCII characters', () => {
    const withAccent = dataset.films.find((f) => f.overview.includes('Fabergé'));
    expect(withAccent).toBeDefined();
    expect(dataset.films.some((f) => f.overview.includes('"'))).toBe(true);
  });

  it('counts genre positives as the README describes (Drama most frequent, empty genres)', () => {
    const byGenre = Object.fromEntries(GENRES.map((g, i) => [g, dataset.summary.positivesPerGenre[i]!]));
    expect(byGenre['Drama']! / 5375).toBeCloseTo(0.54, 1);
    expect(byGenre['Documentary']).toBe(0);
    expect(byGenre['Short']).toBe(0);
  });

  it('honours limit', () => {
    expect(readDataset(realDir, { limit: 10 }).films.map((f) => f.id)).toEqual(dataset.films.slice(0, 10).map((f) => f.id));
  });
});

describe('readDataset on a corrupted copy', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'dataset-'));
    const lines = readFileSync(join(realDir, CSV_FILE), 'utf8').split('\n');
    const header = lines[0]!;
    const good = lines.slice(1, 6);
    const row = (i: number) => good[i]!.split(',');
    const withLabel = (i: number, value: string) => { const cells = row(i); const genreStart = cells.findIndex((c, k) => k > 1 && /^[01]$/.test(c)); cells[genreStart] = value; return cells.join(','); };
    const corrupted = [
      header,
      good[0],                                            // line 2: fine
      good[1]!.replace(/^tt\d+/, 'xx123'),                // line 3: bad id
      withLabel(2, '2'),                                  // line 4: label 2
      'tt9999999,"[]",' + '0,'.repeat(25) + '"A film without a poster."', // line 5: poster missing
      'tt0086465,"[\'Comedy\']",' + '0,'.repeat(25) + '"  "',    // line 6: empty overview
      'tt0000001,too,few',                                // line 7: wrong column count
      good[4],                                            // line 8: fine
      good[0],                                            // line 9: duplicate of line 2
    ].join('\n');
    writeFileSync(join(dir, CSV_FILE), corrupted);
    symlinkSync(join(realDir, 'Images'), join(dir, 'Images'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports each bad row with its line, id and reason, and keeps the good ones', () => {
    const dataset = readDataset(dir);
    expect(dataset.films.map((f) => f.line)).toEqual([2, 8]);
    expect(dataset.summary).toMatchObject({ rows: 8, usable: 2, bad: 6 });
    const byLine = Object.fromEntries(dataset.badRows.map((b) => [b.line, b]));
    expect(byLine[3]!.reason).toMatch(/not an IMDb title id/);
    expect(byLine[4]!.reason).toMatch(/is '2', expected 0 or 1/);
    expect(byLine[5]).toMatchObject({ id: 'tt9999999' });
    expect(byLine[5]!.reason).toMatch(/poster Images\/tt9999999.jpg is missing/);
    expect(byLine[6]!.reason).toBe('Overview is empty');
    expect(byLine[7]!.reason).toMatch(/has 3 columns, expected 28/);
    expect(byLine[9]!.reason).toMatch(/appears twice/);
    expect(formatBadRows(dataset)).toContain('6 bad row(s) skipped, 2 usable of 8');
  });

  it('rejects a wrong header naming the column', () => {
    const bad = mkdtempSync(join(tmpdir(), 'dataset-'));
    writeFileSync(join(bad, CSV_FILE), 'Id,Genre,Action,Comedy\n');
    expect(() => readDataset(bad)).toThrow(/header column 4 is 'Comedy', expected 'Adventure'/);
    rmSync(bad, { recursive: true });
  });

  it('reads a catalogue with only Id and Overview (labels optional), in any column order', () => {
    const catalogue = mkdtempSync(join(tmpdir(), 'catalogue-'));
    symlinkSync(join(realDir, 'Images'), join(catalogue, 'Images'));
    const real = readDataset(realDir, { limit: 3 }).films;
    const quote = (text: string) => `"${text.replace(/"/g, '""')}"`;
    writeFileSync(join(catalogue, CSV_FILE), ['Overview,Id,Year', ...real.map((f) => `${quote(f.overview)},${f.id},1999`), '"No poster here.",tt9999999,2001'].join('\n'));
    const read = readDataset(catalogue, { labels: 'optional' });
    expect(read.films.map((f) => [f.id, f.overview])).toEqual(real.map((f) => [f.id, f.overview]));
    expect(read.films.every((f) => f.labels.every((l) => l === 0))).toBe(true);
    expect(read.badRows).toEqual([expect.objectContaining({ id: 'tt9999999', reason: expect.stringMatching(/poster Images\/tt9999999.jpg is missing/) })]);
    // The development dataset's strict header is still the default.
    expect(() => readDataset(catalogue)).toThrow(/header column 1 is 'Overview', expected 'Id'/);
    writeFileSync(join(catalogue, CSV_FILE), 'Id,Title\ntt0086425,Terms\n');
    expect(() => readDataset(catalogue, { labels: 'optional' })).toThrow(/no Overview column in the header/);
    rmSync(catalogue, { recursive: true });
  });

  it('fails only when no row is usable', () => {
    const empty = mkdtempSync(join(tmpdir(), 'dataset-'));
    mkdirSync(join(empty, 'Images'));
    copyFileSync(join(realDir, CSV_FILE), join(empty, CSV_FILE));
    expect(() => readDataset(empty, { limit: 5 })).toThrow(DatasetError);
    expect(() => readDataset(empty)).toThrow(/no usable row out of 5375 — e.g. line 2 \(tt0086425\): poster/);
    rmSync(empty, { recursive: true });
  });
});

describe('resolveDatasetDir', () => {
  it('says where to put the dataset when none is found', () => {
    const nowhere = mkdtempSync(join(tmpdir(), 'ws-'));
    const saved = process.env['FILMGENRE_DATA'];
    delete process.env['FILMGENRE_DATA'];
    try {
      expect(() => resolveDatasetDir(undefined, nowhere)).toThrow(/Pass --data <dir>, set FILMGENRE_DATA, or put the dataset/);
      expect(() => resolveDatasetDir(join(nowhere, 'missing'))).toThrow(DatasetError);
    } finally {
      if (saved !== undefined) process.env['FILMGENRE_DATA'] = saved;
      rmSync(nowhere, { recursive: true });
    }
  });
});
