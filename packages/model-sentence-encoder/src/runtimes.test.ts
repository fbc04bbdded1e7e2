import { findDatasetDir, readDataset } from '@filmgenre/core';
import { onnxRuntimeVersion } from '@filmgenre/onnx-runtime';
import { initBackend } from '@filmgenre/tf-runtime';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SENTENCE_EMBEDDING_DIM, SentenceEncoder, USE_LITE_WINDOW } from './encoder.js';

const DIM = SENTENCE_EMBEDDING_DIM;
const datasetDir = findDatasetDir();
const overviews = datasetDir ? readDataset(datasetDir).films.map((f) => f.overview) : [];
let onnx: SentenceEncoder;
let tfjs: SentenceEncoder;

beforeAll(async () => {
  await initBackend('wasm', { log: () => {} });
  onnx = await SentenceEncoder.load({ runtime: 'onnxruntime' });
  tfjs = await SentenceEncoder.load({ runtime: 'tfjs' });
});
afterAll(() => {
  onnx?.dispose();
  tfjs?.dispose();
});

/** Real words up to 128 pieces, then one-piece words to exactly 128: one full window. */
function fullWindow(encoder: SentenceEncoder): string {
  let text = '';
  for (const word of overviews.join(' ').split(/\s+/)) {
    if (encoder.tokenizer.encode(`${text} ${word}`).length > USE_LITE_WINDOW) break;
    text = `${text} ${word}`;
  }
  while (encoder.tokenizer.encode(text).length < USE_LITE_WINDOW) text += ' the';
  return text.trim();
}

// Reads the shared dataset in place; skipped (not failed) on a machine without it.
describe.skipIf(!datasetDir)('USE-lite on onnxruntime and on the shipped TF.js graph', () => {
  it('says which runtime it runs on, and shares one cache identity (the embeddings are the same)', () => {
    expect(onnx.info.runtime).toBe(`onnxruntime ${onnxRuntimeVersion()}`);
    expect(tfjs.info.runtime).toBe('tfjs wasm');
    expect(onnx.identity).toBe(tfjs.identity);
  });

  // Relative difference of a text's embeddings a (onnxruntime) and b (TF.js): ‖a − b‖₂ / ‖b‖₂, so at
  // most 1e-4 bounds every component's difference by 1e-4 (b is a unit vector) and the cosine
  // similarity to ≥ 1 − 5e-9. The empty text must be the zero vector on both.
  it('gives the TF.js graph\'s embeddings within 1e-4 relative: real overviews, 1 piece, 128 pieces, several windows, empty', async () => {
    const slice = overviews.filter((_, i) => i % 100 === 0);
    const special = { onePiece: 'A', fullWindow: fullWindow(onnx), severalWindows: slice.slice(0, 12).join(' '), empty: '' };
    expect(onnx.windows(special.onePiece).map((w) => w.length)).toEqual([1]);
    expect(onnx.windows(special.fullWindow).map((w) => w.length)).toEqual([USE_LITE_WINDOW]);
    expect(onnx.windows(special.severalWindows).length).toBeGreaterThan(2);
    expect(onnx.windows(special.empty)).toEqual([]);
    // Rows of many lengths in one call: padding must not reach any piece.
    const lengths = new Set(slice.map((t) => onnx.windows(t)[0]!.length));
    expect(lengths.size).toBeGreaterThan(30);

    const texts = [...slice, ...Object.values(special)];
    const [a, b] = [await onnx.embed(texts), await tfjs.embed(texts)];
    const relative = texts.map((text, i) => {
      let diff = 0;
      let norm = 0;
      for (let d = 0; d < DIM; d++) {
        diff += (a[i * DIM + d]! - b[i * DIM + d]!) ** 2;
        norm += b[i * DIM + d]! ** 2;
      }
      if (text === '') return diff === 0 && norm === 0 ? 0 : Infinity;
      return Math.sqrt(diff / norm);
    });
    expect(Math.max(...relative)).toBeLessThan(1e-4);
    // The same texts one by one (no padding at all) agree too.
    for (const text of Object.values(special)) {
      const i = texts.indexOf(text);
      const alone = await onnx.embed([text]);
      for (let d = 0; d < DIM; d++) expect(Math.abs(alone[d]! - b[i * DIM + d]!)).toBeLessThan(1e-4);
    }
  });

  it.each(['onnxruntime', 'tfjs'] as const)('%s: an aborted embed() rejects within 2 s, whether the abort comes while tokenizing or mid-way, and keeps the texts it finished', async (runtime) => {
      const root = mkdtempSync(join(tmpdir(), 'sentence-abort-'));
      const encoder = await SentenceEncoder.load({ runtime, cacheDir: root });
      try {
        const texts = overviews.slice(0, 2000);
        for (const delay of [0, 700]) {
          const controller = new AbortController();
          // Latency from when the abort was due, not from when its timer got to run: like a signal's
          // handler, the timer waits for the event loop, which is what the encoder must yield.
          const due = performance.now() + delay;
          setTimeout(() => controller.abort(), delay);
          const outcome = await encoder.embed(texts, { signal: controller.signal }).then(() => 'finished', (error: Error) => error.message);
          expect(outcome).toMatch(/interrupted/);
          expect(performance.now() - due).toBeLessThan(2000);
        }
        // The finished texts are cached on disk; the rest are left for the next run.
        expect(encoder.cachedRows).toBeGreaterThan(0);
        expect(encoder.cachedRows).toBeLessThan(texts.length);
        expect(readdirSync(root)).toHaveLength(1);
      } finally {
        encoder.dispose();
        rmSync(root, { recursive: true, force: true });
      }
  });
});
