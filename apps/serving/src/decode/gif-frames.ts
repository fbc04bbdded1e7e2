// Reading a GIF's header walks every frame (libvips reports the page count): a 10 MB GIF of 700,000
// one-pixel frames took 884 ms of CPU in the server process before any deadline applied. Posters use
// the first frame only; counting the frames here is a walk over the blocks, one step per sub-block of
// up to 255 bytes, that stops past the limit, so the header read is refused before libvips sees it.

/** True for the GIF signature (GIF87a, GIF89a). */
export function isGif(bytes: Uint8Array): boolean {
  return bytes.length >= 6 && bytes[0] === 0x47 && bytes[1] === 0x49 && bytes[2] === 0x46 && bytes[3] === 0x38;
}

/** Skips a chain of data sub-blocks (a length byte, that many bytes; 0 ends it); returns the offset after it. */
function skipSubBlocks(bytes: Uint8Array, at: number): number {
  while (at < bytes.length) {
    const length = bytes[at]!;
    at += 1 + length;
    if (length === 0) break;
  }
  return at;
}

/** Size in bytes of a colour table announced by a packed-fields byte (none if its top bit is clear). */
const colourTable = (packed: number) => (packed & 0x80 ? 3 * (1 << ((packed & 7) + 1)) : 0);

/**
 * Image descriptors (frames) in a GIF, counting stops once past `stopAfter`. A block that is neither
 * a frame, an extension nor the trailer ends the walk: whether the file is corrupt is libvips's call.
 */
export function countGifFrames(bytes: Uint8Array, stopAfter = Number.POSITIVE_INFINITY): number {
  if (!isGif(bytes) || bytes.length < 13) return 0;
  let at = 13 + colourTable(bytes[10]!);
  let frames = 0;
  while (at < bytes.length) {
    const block = bytes[at]!;
    if (block === 0x21) {
      at = skipSubBlocks(bytes, at + 2); // introducer, label, sub-blocks
    } else if (block === 0x2c) {
      if (++frames > stopAfter) break;
      if (at + 10 > bytes.length) break;
      at += 10 + colourTable(bytes[at + 9]!);
      at = skipSubBlocks(bytes, at + 1); // LZW minimum code size, sub-blocks
    } else {
      break; // 0x3b, the trailer, or not a GIF block
    }
  }
  return frames;
}
