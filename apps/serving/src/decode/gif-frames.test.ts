import sharp from 'sharp';
import { manyFrameGif } from '@filmgenre/serving-testing';
import { describe, expect, it } from 'vitest';
import { countGifFrames, isGif } from './gif-frames.js';

describe('countGifFrames', () => {
  it('counts the frames of GIFs written by libvips (still and animated, with extensions and colour tables)', async () => {
    const still = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#336699' } }).gif().toBuffer();
    expect(isGif(still)).toBe(true);
    expect(countGifFrames(still)).toBe(1);
    // The crafted frames, as libvips counts them too.
    const crafted = manyFrameGif(10, 10, 5);
    expect(countGifFrames(crafted)).toBe(5);
    expect((await sharp(crafted).metadata()).pages).toBe(5);
  });

  it('counts the crafted GIF of 700,000 frames, stopping past the limit, in milliseconds', () => {
    const gif = manyFrameGif(1400, 1400, 700_000);
    expect(countGifFrames(gif, 1_000)).toBe(1_001);
    const t0 = performance.now();
    expect(countGifFrames(gif)).toBe(700_000);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('is 0 for what is not a GIF, and ends on truncated input', () => {
    expect(countGifFrames(Buffer.from('\x89PNG\r\n\x1a\n'))).toBe(0);
    const gif = manyFrameGif(10, 10, 20);
    for (const cut of [5, 13, 30, 100, gif.length - 3]) expect(countGifFrames(gif.subarray(0, cut))).toBeLessThanOrEqual(20);
  });
});
