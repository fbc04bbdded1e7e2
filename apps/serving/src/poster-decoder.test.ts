import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { decodePoster, PosterError } from '@filmgenre/data-images';
import { afterAll, describe, expect, it } from 'vitest';
import { DecodeProcess } from './decode/decode-process.js';
import { ApiError } from './errors.js';
import { LARGE_POSTER_QUEUE, PosterDecoder, type PosterLimits } from './poster-decoder.js';
import { blackPng, heldOutFilms, scanBombJpeg } from '@filmgenre/serving-testing';

const limits: PosterLimits = { maxInputPixels: 25_000_000, maxInputSide: 10_000, maxAspectRatio: 10, maxJpegScans: 100, decodeTimeoutMs: 200, largePosterPixels: 1_000 };

/** Decodes that finish only when told to (both lanes), so the lanes can be watched without burning CPU. */
function controlledLanes() {
  const pending: { lane: string; finish: () => void; fail: (e: Error) => void }[] = [];
  const decodeIn = (lane: string) => () => new Promise<Uint8Array>((resolve, reject) => pending.push({ lane, finish: () => resolve(new Uint8Array(3)), fail: reject }));
  const killed: string[] = [];
  const lanes = {
    small: decodeIn('small'),
    large: {
      decode: decodeIn('large'),
      kill: (reason: string) => {
        killed.push(reason);
        for (const p of pending.filter((x) => x.lane === 'large')) p.fail(new Error(reason));
        pending.splice(0, pending.length, ...pending.filter((x) => x.lane !== 'large'));
      },
      close: () => {},
    },
  };
  /** Waits until `n` decodes have started and not finished. */
  const started = async (n: number) => {
    while (pending.length < n) await new Promise((r) => setTimeout(r, 5));
  };
  const finishAll = () => pending.splice(0).forEach((p) => p.finish());
  return { lanes, pending, killed, started, finishAll };
}

/** One 16 × 16 size: the tests about lanes and deadlines need no more. */
const SQUARE = [{ width: 16, height: 16 }];

const codeOf = (p: Promise<unknown>) => p.then(() => 'OK', (e: unknown) => (e instanceof ApiError ? e.code : String(e)));

describe('PosterDecoder', () => {
  it('refuses a JPEG of more scans than the limit before decoding it, naming the limit, and lets one at the limit through', async () => {
    const decoded: number[] = [];
    const small = (bytes: string | Buffer) => {
      decoded.push(bytes.length);
      return Promise.resolve(new Uint8Array(SQUARE[0]!.width * SQUARE[0]!.height * 3));
    };
    const decoder = new PosterDecoder({ ...limits, largePosterPixels: 2_000_000 }, undefined, { small, large: { decode: () => Promise.reject(new Error('must not decode')), kill: () => {}, close: () => {} } });
    const refusal = decoder.decode(scanBombJpeg(1400, 1400, 50_000), SQUARE);
    await expect(refusal).rejects.toMatchObject({ code: 'POSTER_TOO_MANY_SCANS', status: 422 });
    await expect(refusal).rejects.toThrow(/more than 100 scans/);
    expect(decoded).toEqual([]);
    // The DC scan and 99 repeats: 100 scans, at the limit.
    await decoder.decode(scanBombJpeg(1400, 1400, 99), SQUARE);
    expect(decoded).toHaveLength(1);
  });

  it('refuses from the header: too many pixels, a side too long, an aspect ratio too extreme', async () => {
    const never = () => Promise.reject(new Error('must not decode'));
    const decoder = new PosterDecoder(limits, undefined, { small: never, large: { decode: never, kill: () => {}, close: () => {} } });
    expect(await codeOf(decoder.decode(await blackPng(1, 25_000_000), SQUARE))).toBe('POSTER_SIDE_TOO_LONG');
    expect(await codeOf(decoder.decode(await blackPng(5_001, 5_000), SQUARE))).toBe('POSTER_TOO_MANY_PIXELS');
    expect(await codeOf(decoder.decode(await blackPng(11, 120), SQUARE))).toBe('POSTER_ASPECT_RATIO_TOO_EXTREME');
    expect(await codeOf(decoder.decode(Buffer.from('not an image at all'), SQUARE))).toBe('POSTER_NOT_AN_IMAGE');
  });

  it('decodes small posters side by side, large ones one at a time', async () => {
    const { lanes, pending, started, finishAll } = controlledLanes();
    const decoder = new PosterDecoder({ ...limits, decodeTimeoutMs: 60_000 }, undefined, lanes);
    const small = await blackPng(20, 20); // 400 pixels: small lane
    const large = await blackPng(100, 100); // 10,000 pixels: large lane
    const smalls = [decoder.decode(small, SQUARE), decoder.decode(small, SQUARE)];
    const larges = [decoder.decode(large, SQUARE), decoder.decode(large, SQUARE), decoder.decode(large, SQUARE)];
    await started(3);
    await new Promise((r) => setTimeout(r, 50));
    expect(pending.map((p) => p.lane).sort()).toEqual(['large', 'small', 'small']); // both small ones and one large one, no more
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

  it('answers at the deadline: POSTER_DECODE_TIMEOUT while decoding (and the large decoder is killed), POSTER_DECODE_BUSY while waiting', async () => {
    const { lanes, killed } = controlledLanes();
    const decoder = new PosterDecoder(limits, undefined, lanes);
    const large = await blackPng(100, 100);
    const t0 = performance.now();
    // Whichever reads its header first gets the slot and times out (its decoder is killed, the slot
    // passes on); the others time out decoding or waiting, depending on whose deadline comes first.
    const codes = await Promise.all(Array.from({ length: 3 }, () => codeOf(decoder.decode(large, SQUARE))));
    expect(codes).toContain('POSTER_DECODE_TIMEOUT');
    expect(codes.every((c) => c === 'POSTER_DECODE_TIMEOUT' || c === 'POSTER_DECODE_BUSY'), codes.join()).toBe(true);
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(killed.length).toBe(codes.filter((c) => c === 'POSTER_DECODE_TIMEOUT').length);
    await decoder.idle(); // the killed decode ended with its process: the lane is free at once
    expect(decoder.largeDecoding).toBe(0);
  });

  it('decodes a poster once per size asked for (square and not), in either lane, each exactly like decodePoster', async () => {
    const poster = readFileSync(heldOutFilms()[0]!.posterPath); // 150 × 300 = 45,000 pixels
    const sizes = [{ width: 16, height: 16 }, { width: 32, height: 64 }];
    const expected = await Promise.all(sizes.map((size) => decodePoster(poster, size)));
    for (const largePosterPixels of [2_000_000, 1_000]) {
      const decoder = new PosterDecoder({ ...limits, decodeTimeoutMs: 10_000, largePosterPixels });
      try {
        const decoded = await decoder.decode(poster, sizes);
        expect(decoded.lane).toBe(largePosterPixels > 45_000 ? 'small' : 'large');
        expect(decoded.header).toMatchObject({ width: 150, height: 300 });
        expect(decoded.pixels.map((p) => p.length)).toEqual([16 * 16 * 3, 32 * 64 * 3]);
        decoded.pixels.forEach((p, i) => expect(Buffer.from(p).equals(Buffer.from(expected[i]!)), `${decoded.lane} lane, size ${i}`).toBe(true));
      } finally {
        decoder.close();
      }
    }
  });

  it('holds the large-poster slot for all sizes of one poster, one decode after the other', async () => {
    const { lanes, pending, started, finishAll } = controlledLanes();
    const decoder = new PosterDecoder({ ...limits, decodeTimeoutMs: 60_000 }, undefined, lanes);
    const large = await blackPng(100, 100);
    const two = decoder.decode(large, [{ width: 16, height: 16 }, { width: 16, height: 32 }]);
    await started(1);
    const other = decoder.decode(large, SQUARE);
    while (decoder.largeQueued < 1) await new Promise((r) => setTimeout(r, 5));
    for (let step = 0; step < 3; step++) {
      await started(1);
      await new Promise((r) => setTimeout(r, 20));
      expect(pending.length).toBe(1); // never two large decodes at once, and the second size before the other poster
      finishAll();
      if (step === 1) expect(await codeOf(two)).toBe('OK');
    }
    expect(await codeOf(other)).toBe('OK');
    expect((await two).pixels).toHaveLength(2);
  });

  it(`turns away large posters at once when ${LARGE_POSTER_QUEUE} already wait`, async () => {
    const { lanes, started, finishAll } = controlledLanes();
    const decoder = new PosterDecoder({ ...limits, decodeTimeoutMs: 60_000 }, undefined, lanes);
    const large = await blackPng(100, 100);
    const waiting = Array.from({ length: 1 + LARGE_POSTER_QUEUE }, () => decoder.decode(large, SQUARE));
    await started(1);
    while (decoder.largeQueued < LARGE_POSTER_QUEUE) await new Promise((r) => setTimeout(r, 5));
    const error = await decoder.decode(large, SQUARE).catch((e: unknown) => e);
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

describe('DecodeProcess (the large-poster decoder, a child process)', () => {
  const decoder = new DecodeProcess();
  afterAll(() => decoder.close());

  it('decodes exactly like decodePoster, at a lower CPU priority, and reports bad posters as PosterError', async () => {
    const poster = readFileSync(heldOutFilms()[0]!.posterPath);
    const options = { width: 32, height: 64, limitInputPixels: 25_000_000 };
    expect(Buffer.from(await decoder.decode(poster, options)).equals(Buffer.from(await decodePoster(poster, options)))).toBe(true);
    if (process.platform === 'linux') expect(getPriority(decoder.pid!)).toBe(10);
    const error = await decoder.decode(poster.subarray(0, 2_000), options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PosterError);
    expect((error as PosterError).kind).toBe('corrupt');
  });

  it('stops a slow decode at once when killed, and decodes the next poster in a new process', async () => {
    const slow = await blackPng(1, 5_000_000); // ≈ 2 s of decoding here
    const first = decoder.pid;
    const cut = decoder.decode(slow, { width: 16, height: 16, limitInputPixels: 100_000_000 }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    decoder.kill('test');
    expect(await cut).toBeInstanceOf(Error);
    expect(performance.now() - t0).toBeLessThan(100);
    const small = await blackPng(30, 40);
    expect(await decoder.decode(small, { width: 8, height: 8, limitInputPixels: 100_000 })).toHaveLength(8 * 8 * 3);
    expect(decoder.pid).not.toBe(first);
  });
});
