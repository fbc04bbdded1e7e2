// A JPEG's decode time grows with its number of scans, not its size or pixels: a 1400 × 1400
// progressive JPEG that repeats one valid scan 50,000 times is 654 KB and took 35 s to decode (1,000
// scans 0.41 s, 10,000 3.8 s). Encoders write 10 or so (libjpeg's progressive script: 10 for colour);
// counting them is a walk over the markers, linear in the bytes and done before libvips sees the file.

const SOS = 0xda;
const EOI = 0xd9;

/** Markers that stand alone, without a length: TEM, RST0–7 (inside entropy-coded data), SOI. */
const standalone = (marker: number) => marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8);

/**
 * Start-of-scan markers in a JPEG, counting stops once past `stopAfter` (so a bomb costs no more than
 * the limit). Entropy-coded data is skipped by searching for the next 0xFF that starts a marker
 * (0xFF00 is a stuffed byte, 0xFFFF fill); segments are skipped by their length.
 */
export function countJpegScans(bytes: Uint8Array, stopAfter = Number.POSITIVE_INFINITY): number {
  let scans = 0;
  let at = 2; // after SOI
  while (at < bytes.length - 1) {
    if (bytes[at] !== 0xff) {
      at = bytes.indexOf(0xff, at + 1);
      if (at < 0) break;
      continue;
    }
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at++;
      continue;
    }
    if (marker === 0x00 || standalone(marker)) {
      at += 2;
      continue;
    }
    if (marker === EOI) break;
    if (marker === SOS && ++scans > stopAfter) break;
    if (at + 3 >= bytes.length) break;
    at += 2 + ((bytes[at + 2]! << 8) | bytes[at + 3]!);
  }
  return scans;
}
