import { describe, expect, it } from 'vitest';
import { shardSlice } from './catalogue.js';
import { resolveShard, SHARD_COUNT_ENV, SHARD_INDEX_ENV } from './config.js';

describe('shards of a catalogue', () => {
  it('are contiguous runs of whole chunks, disjoint, covering the catalogue in order, the same on every call', () => {
    const films = Array.from({ length: 1_000 }, (_, i) => i);
    for (const count of [1, 2, 3, 7, 9, 20]) {
      const slices = Array.from({ length: count }, (_, index) => shardSlice(films, { index, count }, 128));
      expect(slices.flatMap((s) => s.films)).toEqual(films);
      for (const s of slices) {
        expect(s.films[0] ?? s.start).toBe(s.start);
        // Every shard starts on a chunk boundary, so each film is scored in the same batch as in one process.
        expect(s.start % 128 === 0 || s.films.length === 0).toBe(true);
      }
      expect(Array.from({ length: count }, (_, index) => shardSlice(films, { index, count }, 128))).toEqual(slices);
    }
  });

  it('come from --shard, else from an Indexed Job\'s environment, else the whole catalogue; an incomplete environment is named', () => {
    expect(resolveShard({ index: 1, count: 3 }, { [SHARD_INDEX_ENV]: '0', [SHARD_COUNT_ENV]: '2' })).toEqual({ index: 1, count: 3 });
    expect(resolveShard(undefined, { [SHARD_INDEX_ENV]: '1', [SHARD_COUNT_ENV]: '2' })).toEqual({ index: 1, count: 2 });
    expect(resolveShard(undefined, {})).toEqual({ index: 0, count: 1 });
    expect(() => resolveShard(undefined, { [SHARD_INDEX_ENV]: '1' })).toThrow(/JOB_COMPLETION_INDEX is 1 but JOB_COMPLETIONS is not set/);
    expect(() => resolveShard(undefined, { [SHARD_INDEX_ENV]: '2', [SHARD_COUNT_ENV]: '2' })).toThrow(/I must be below N/);
  });
});
