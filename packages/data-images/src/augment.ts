import { createRng, hashString, type Rng } from '@filmgenre/core';
import { z } from 'zod';

/**
 * Training-time augmentation strengths; 0 disables each one. Applied in plain JS while a batch's
 * float32 array is filled, so it costs no tensor kernels and no extra pass over the data.
 */
export const AugmentOptionsSchema = z.strictObject({
  /** Probability of a horizontal flip (posters are not symmetric, but their genre cues mostly are). */
  flip: z.number().min(0).max(1).default(0.5),
  /** Largest shift in pixels along each axis; the border is filled by reflection (like pad-4-reflect-and-crop). */
  translate: z.number().int().min(0).max(32).default(4),
  /** Largest brightness change, added in [0, 1] units: delta ~ U(-b, b). */
  brightness: z.number().min(0).max(1).default(0.1),
  /** Largest contrast change: each channel is scaled around its mean by a factor ~ U(1 - c, 1 + c). */
  contrast: z.number().min(0).max(1).default(0.1),
});

export type AugmentOptions = z.input<typeof AugmentOptionsSchema>;
export type ResolvedAugment = z.output<typeof AugmentOptionsSchema>;

/** Validates and fills defaults; `false`/undefined, or all strengths 0, mean no augmentation (null). */
export function resolveAugment(options: AugmentOptions | false | undefined): ResolvedAugment | null {
  if (options === false || options === undefined) return null;
  const parsed = AugmentOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new RangeError(`invalid augment options: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const a = parsed.data;
  return a.flip === 0 && a.translate === 0 && a.brightness === 0 && a.contrast === 0 ? null : a;
}

/** x / 255 as float32 for every uint8 value: the single conversion used by training and serving. */
export const UINT8_TO_UNIT = (() => {
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = v / 255;
  return lut;
})();

/** Copies one HWC uint8 image into float32 [0, 1] without augmentation. */
export function toUnitFloat(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, length: number): void {
  const lut = UINT8_TO_UNIT;
  for (let i = 0; i < length; i++) dst[dstOffset + i] = lut[src[srcOffset + i]!]!;
}

/** The generator for one example's augmentation: depends on (seed, epoch, example index) only, not on batching. */
export function exampleRng(seed: number, epoch: number, index: number): Rng {
  return createRng(hashString(`augment:${seed}:${epoch}:${index}`));
}

/** Reflects an out-of-range coordinate back into [0, size) without repeating the edge (numpy 'reflect'). */
function reflect(i: number, size: number): number {
  if (size === 1) return 0;
  const period = 2 * size - 2;
  let j = i % period;
  if (j < 0) j += period;
  return j < size ? j : period - j;
}

/**
 * Writes one augmented HWC image (uint8 → float32 in [0, 1]): optional horizontal flip, integer shift
 * with reflected border, brightness and per-channel contrast, clamped to [0, 1].
 * Draws from `rng` in a fixed order, whatever strengths are 0, so one option does not reshuffle another.
 */
export function augmentInto(
  src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, size: number, aug: ResolvedAugment, rng: Rng,
): void {
  const flip = rng() < aug.flip;
  const dx = Math.floor(rng() * (2 * aug.translate + 1)) - aug.translate;
  const dy = Math.floor(rng() * (2 * aug.translate + 1)) - aug.translate;
  const delta = (rng() * 2 - 1) * aug.brightness;
  const factor = 1 + (rng() * 2 - 1) * aug.contrast;
  const lut = UINT8_TO_UNIT;

  // Per-channel means of the source image, for contrast (tf.image.adjust_contrast's definition).
  const mean = [0, 0, 0];
  if (aug.contrast > 0) {
    const n = size * size;
    for (let p = 0; p < n; p++) {
      const o = srcOffset + p * 3;
      mean[0]! += src[o]!;
      mean[1]! += src[o + 1]!;
      mean[2]! += src[o + 2]!;
    }
    for (let c = 0; c < 3; c++) mean[c] = mean[c]! / n / 255;
  }
  // out = (v - mean) * factor + mean + delta, clamped: a function of (channel, v) only, so one
  // 3 × 256 table per image turns the per-pixel work into a lookup.
  const table = TABLE;
  for (let c = 0; c < 3; c++) {
    const offset = mean[c]! * (1 - factor) + delta;
    for (let v = 0; v < 256; v++) {
      const out = lut[v]! * factor + offset;
      table[c * 256 + v] = out < 0 ? 0 : out > 1 ? 1 : out;
    }
  }

  // Source column for each output column, computed once per image.
  const cols = COLS.length >= size ? COLS : (COLS = new Int32Array(size));
  for (let x = 0; x < size; x++) {
    const sx = reflect(x + dx, size);
    cols[x] = flip ? size - 1 - sx : sx;
  }
  for (let y = 0; y < size; y++) {
    const rowBase = srcOffset + reflect(y + dy, size) * size * 3;
    let o = dstOffset + y * size * 3;
    for (let x = 0; x < size; x++) {
      const s = rowBase + cols[x]! * 3;
      dst[o++] = table[src[s]!]!;
      dst[o++] = table[256 + src[s + 1]!]!;
      dst[o++] = table[512 + src[s + 2]!]!;
    }
  }
}

// Scratch space reused across calls (augmentInto is synchronous, so never shared by two calls at once).
const TABLE = new Float32Array(3 * 256);
let COLS = new Int32Array(256);
