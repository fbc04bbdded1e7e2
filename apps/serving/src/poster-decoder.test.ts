import { describe, expect, it } from 'vitest';
import { ApiError } from './errors.js';
import { LARGE_POSTER_QUEUE, PosterDecoder, type PosterLimits } from './poster-decoder.js';
import { blackPng } from './testing/crafted.js';

const limits: PosterLimits = { maxInputPixels: 25_000_000, maxInputSide: 10_000, maxAspectRatio: 10, decodeTimeoutMs: 200, largePosterPixels: 1_000 };

/** A decode that finishes only when told to, so the lanes can be watched without burning CPU. */
function controlledDecode() {
  const pending: { finish: () => void }[] = [];
  const decode = () => new Promise<Uint8Array>((resolve) => pending.push({ finish: () => resolve(new Uint8Array(3)) }));
  /** Waits until `n` decodes have started and not finished. */
  const started = async (n: number) => {
    while (pending.length < n) await new Promise((r) => setTimeout(r, 5));
  };
  const finishAll = () => pending.splice(0).forEach((p) => p.finish());
  return { decode, pending, started, finishAll };
}

const codeOf = (p: Promise<unknown>) => p.then(() => 'OK', (e: unknown) => (e instanceof ApiError ? e.code : String(e)));

describe('PosterDecoder', () => {
  it('refuses from the header: too many pixels, a side too long, an aspect ratio too extreme', async () => {
    const decoder = new PosterDecoder(limits, undefined, () => Promise.reject(new Error('must not decode')));
    expect(await codeOf(decoder.decode(await blackPng(1, 25_000_000), 16))).toBe('POSTER_SIDE_TOO_LONG');
    expect(await codeOf(decoder.decode(await blackPng(5_001, 5_000), 16))).toBe('POSTER_TOO_MANY_PIXELS');
    expect(await codeOf(decoder.decode(await blackPng(11, 120), 16))).toBe('POSTER_ASPECT_RATIO_TOO_EXTREME');
    expect(await codeOf(decoder.decode(Buffer.from('not an image at all'), 16))).toBe('POSTER_NOT_AN_IMAGE');
  });

  it('decodes small posters side by side, large ones one at a time', async () => {
    const { decode, pending, started, finishAll } = controlledDecode();
    const decoder = new PosterDecoder({ ...limits, decodeTimeoutMs: 60_000 }, undefined, decode);
    const small = await blackPng(20, 20); // 400 pixels: small lane
    const large = await blackPng(100, 100); // 10,000 pixels: large lane
    const smalls = [decoder.decode(small, 16), decoder.decode(small, 16)];
    const larges = [decoder.decode(large, 16), decoder.decode(large, 16), decoder.decode(large, 16)];
    await started(3);
    await new Promise((r) => setTimeout(r, 50));
    expect(pending).toHaveLength(3); // both small ones and one large one, no more
    expect(decoder.largeDecoding).toBe(1);
    finishAll();
    await Promise.all(smalls);
    // The large ones get the slot in whatever order their headers were read: finish each as it
    // starts, and check that never two decode at once.
    const results = Promise.all(larges.map(codeOf));
    let done = false;
    void results.then(() => (done = true));
    while (!done) {
      expect(pending.length).toBeLessThanOrEqual(1);
      expect(decoder.largeDecoding).toBeLessThanOrEqual(1);
      finishAll();
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(await results).toEqual(['OK', 'OK', 'OK']);
    await decoder.idle();
    expect(decoder.largeDecoding).toBe(0);
  });

  it('answers at the deadline: POSTER_DECODE_TIMEOUT while decoding, POSTER_DECODE_BUSY while waiting; the slot frees only when the decode ends', async () => {
    const { decode, finishAll } = controlledDecode();
    const decoder = new PosterDecoder(limits, undefined, decode);
    const large = await blackPng(100, 100);
    const t0 = performance.now();
    // Whichever reads its header first gets the slot and times out; the other times out waiting.
    const codes = await Promise.all([codeOf(decoder.decode(large, 16)), codeOf(decoder.decode(large, 16))]);
    expect(codes.sort()).toEqual(['POSTER_DECODE_BUSY', 'POSTER_DECODE_TIMEOUT']);
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(decoder.largeDecoding).toBe(1); // libvips (here: the fake) is still at work
    expect(decoder.active).toBe(1);
    finishAll();
    await decoder.idle();
    expect(decoder.largeDecoding).toBe(0);
  });

  it(`turns away large posters at once when ${LARGE_POSTER_QUEUE} already wait`, async () => {
    const { decode, started, finishAll } = controlledDecode();
    const decoder = new PosterDecoder({ ...limits, decodeTimeoutMs: 60_000 }, undefined, decode);
    const large = await blackPng(100, 100);
    const waiting = Array.from({ length: 1 + LARGE_POSTER_QUEUE }, () => decoder.decode(large, 16));
    await started(1);
    while (decoder.largeQueued < LARGE_POSTER_QUEUE) await new Promise((r) => setTimeout(r, 5));
    const error = await decoder.decode(large, 16).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('POSTER_DECODE_BUSY');
    expect((error as ApiError).headers['Retry-After']).toBe('1');
    for (let i = 0; i < waiting.length; i++) {
      await started(1);
      finishAll();
    }
    expect(await Promise.all(waiting.map(codeOf))).toEqual(Array(waiting.length).fill('OK'));
  });
});
