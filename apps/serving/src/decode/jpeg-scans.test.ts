import { decodePoster } from '@filmgenre/data-images';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { scanBombJpeg } from '@filmgenre/serving-testing';
import { countJpegScans } from './jpeg-scans.js';

const photo = (progressive: boolean) =>
  sharp({ create: { width: 300, height: 200, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).jpeg({ progressive, quality: 80 }).toBuffer();

describe('countJpegScans', () => {
  it('finds the one scan of a baseline JPEG and the several of a progressive one, whose entropy data holds stuffed 0xFF bytes', async () => {
    expect(countJpegScans(await photo(false))).toBe(1);
    const progressive = await photo(true);
    const scans = countJpegScans(progressive);
    expect(scans).toBeGreaterThan(1);
    expect(scans).toBeLessThan(20);
    // The walk agrees with libvips, which reads the same file as a valid image.
    await expect(decodePoster(progressive, { width: 32, height: 32 })).resolves.toHaveLength(32 * 32 * 3);
  });

  it('counts every repeated scan of the scan bomb, and stops counting past the limit', () => {
    const bomb = scanBombJpeg(1400, 1400, 5_000);
    expect(countJpegScans(bomb)).toBe(5_001);
    expect(countJpegScans(bomb, 100)).toBe(101);
  });

  it('ends on truncated input without reading past it', () => {
    const bomb = scanBombJpeg(100, 100, 10);
    for (const cut of [3, 10, 100, bomb.length - 5]) expect(countJpegScans(bomb.subarray(0, cut))).toBeLessThanOrEqual(11);
  });
});
