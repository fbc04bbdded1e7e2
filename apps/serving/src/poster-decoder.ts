// A poster upload → the model's input pixels, without letting any poster stall the server.
//
// What stalls it is measured (issues 12 and 21, 2 cores): a 97 KB PNG declaring 1 × 25,000,000 pixels
// takes 7–9 s to decode, a 654 KB JPEG of 1400 × 1400 pixels and 50,000 scans 35 s. Decoded in the
// server process (sharp, on libuv's 4 threads), nothing stops such a decode: four held every thread
// and a normal poster waited 35 s. sharp's own `timeout` does not help: libvips checks it between
// regions of work and stopped that PNG only at 64–96 % done. So:
//   1. bounds from the header, before any pixel is decoded: pixels, each side, aspect ratio, and a
//      JPEG's number of scans (decode time grows with them; see decode/jpeg-scans.ts);
//   2. a lane by the decode work the header announces (`decodeWork`: pixels, a JPEG's scans, a PNG's
//      depth and interlacing, WebP): up to `inProcessDecodePixels` (the dataset's posters are 45,000)
//      in the server process, proven cheap by the costliest files we could craft at that limit
//      (poster-decoder.test.ts: a few ms of CPU) and spared an IPC round trip that cost throughput;
//      up to `largePosterPixels` in a pool of child processes at the server's priority
//      (decode/decode-pool.ts); more, and the formats whose cost the header does not bound, one at a
//      time in a child process at a lower CPU priority (decode/decode-process.ts), with a bounded
//      wait, so the usual posters never queue behind them;
//   3. one deadline per poster, from its arrival: the request is answered when it passes, and a
//      decode in a child process is stopped by killing it (a new one replaces it at once); one in the
//      server process is cheap by the bound above. (`--decode-processes 0`: no pool, the server
//      process decodes up to `largePosterPixels`, as before issue 21.)
import { decodePoster, PosterError, POSTER_FORMATS, probePoster, type PosterProbe } from '@filmgenre/data-images';
import type { ServingConfig } from './config.js';
import { ApiError } from './errors.js';
import { DecodePool } from './decode/decode-pool.js';
import { DecodeProcess } from './decode/decode-process.js';
import { countGifFrames, isGif } from './decode/gif-frames.js';
import { countJpegScans } from './decode/jpeg-scans.js';
import type { ServingMetrics } from './metrics.js';
import type { PosterSize } from './models.js';

export type PosterLimits = Pick<ServingConfig, 'maxInputPixels' | 'maxInputSide' | 'maxAspectRatio' | 'maxJpegScans' | 'maxGifFrames' | 'decodeTimeoutMs' | 'largePosterPixels' | 'inProcessDecodePixels' | 'decodeProcesses'>;

/** Large posters allowed to wait for the large-poster slot; more get POSTER_DECODE_BUSY at once. */
export const LARGE_POSTER_QUEUE = 8;

/**
 * Where a poster is decoded: `in-process` (the least work, proven cheap: in the server process, no
 * IPC), `small` (the pool of decoder processes), `large` (one at a time, at a lower priority).
 */
export type DecodeLane = 'in-process' | 'small' | 'large';

/** A header that passed the checks, with what they counted. */
export interface CheckedHeader extends PosterProbe {
  /** A JPEG's scans (1 for a baseline JPEG); 0 for other formats. */
  jpegScans: number;
  /** A PNG's sample depth, samples per pixel (a palette's: 3) and interlacing, from its IHDR. */
  png?: { bitDepth: number; channels: number; interlaced: boolean };
}

export interface DecodedPoster {
  /** The poster as width × height × 3 RGB bytes for each size asked for, in the same order: the poster models' inputs. */
  pixels: Uint8Array[];
  header: CheckedHeader;
  lane: DecodeLane;
}

/**
 * Formats whose decode time the checked header bounds: it grows with the pixels, the bytes per pixel
 * and (for JPEG) the scans, measured on the worst files we could craft (poster-decoder.test.ts). The
 * others (GIF, TIFF, AVIF) always take the one-at-a-time lane: a TIFF's tiles may be JPEGs of any
 * number of scans, and AV1 costs many times what JPEG does per pixel (a 2 MP AVIF of noise: 431 ms).
 */
export const HEADER_BOUNDED_FORMATS: readonly string[] = ['jpeg', 'png', 'webp'];

/**
 * A progressive JPEG's scan after the first costs about this fraction of a baseline decode of the
 * same pixels, when it carries real data (2 MP of noise, 4:4:4, quality 95: baseline 28 ms,
 * progressive in 10 scans 214 ms; the scan bomb, whose scans carry nothing, only 0.18 ms a
 * scan). The inverse DCT, colour conversion and resize happen once.
 */
export const JPEG_SCAN_COST = 0.75;

/** A WebP decode against a baseline JPEG of the same pixels: lossy noise 136 ms, lossless 45 ms, JPEG 28 ms (2 MP). */
export const WEBP_COST = 5;

/**
 * The decode work a header announces, in pixels of a baseline 8-bit JPEG decode (≈ 14 ns each here):
 *   JPEG: pixels × (1 + JPEG_SCAN_COST per scan after the first);
 *   PNG: pixels × samples per pixel / 3, four times that for 16-bit samples (twice the bytes, then
 *        converted to 8 bits), twice again when interlaced (2 MP of noise: 8-bit RGB 23 ms, 16-bit
 *        RGBA 124 ms, interlaced 273 ms);
 *   WebP: pixels × WEBP_COST.
 */
export function decodeWork(header: CheckedHeader): number {
  const { pixels } = header;
  switch (header.format) {
    case 'jpeg':
      return pixels * (1 + JPEG_SCAN_COST * Math.max(0, header.jpegScans - 1));
    case 'png': {
      const png = header.png ?? { bitDepth: 16, channels: 4, interlaced: true }; // unread: the worst
      return pixels * (png.channels / 3) * (png.bitDepth > 8 ? 4 : 1) * (png.interlaced ? 2 : 1);
    }
    case 'webp':
      return pixels * WEBP_COST;
    default:
      return Number.POSITIVE_INFINITY;
  }
}

/**
 * The lane of a checked header: one at a time for much work or a format the header does not bound;
 * in the server process for at most `inProcessDecodePixels` of work; the pool between the two.
 */
export function laneOf(header: CheckedHeader, limits: Pick<PosterLimits, 'largePosterPixels' | 'inProcessDecodePixels'>): DecodeLane {
  if (!HEADER_BOUNDED_FORMATS.includes(header.format)) return 'large';
  const work = decodeWork(header);
  return work > limits.largePosterPixels ? 'large' : work <= limits.inProcessDecodePixels ? 'in-process' : 'small';
}

/** A PNG's IHDR, at its fixed place after the signature: bit depth, samples per pixel, interlacing. */
export function readPngHeader(bytes: Uint8Array): CheckedHeader['png'] {
  if (bytes.length < 29 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return undefined;
  const colourType = bytes[25]!;
  const channels = ({ 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 } as Record<number, number>)[colourType] ?? 4;
  return { bitDepth: bytes[24]!, channels, interlaced: bytes[28] === 1 };
}

interface Waiter {
  start: () => void;
}

type LaneOptions = PosterSize & { limitInputPixels: number };

/** Decodes the usual posters: by default a pool of processes, stopped when `signal` aborts; in-process with `decodeProcesses` 0. */
export interface SmallDecoder {
  decode(bytes: Buffer, options: LaneOptions, signal: AbortSignal): Promise<Uint8Array>;
  close(): void;
}

/** In the server process, on libuv's threads: `signal` cannot stop it (it runs out in libvips). */
export const inProcessDecoder: SmallDecoder = { decode: (bytes, options) => decodePoster(bytes, options), close: () => {} };

/** Decodes large posters somewhere it can be stopped (by default a DecodeProcess). */
export interface LargeDecoder {
  decode(bytes: Buffer, options: PosterSize & { limitInputPixels: number }): Promise<Uint8Array>;
  /** Stops the decode under way at once; its promise rejects. */
  kill(reason: string): void;
  close(): void;
}

export class PosterDecoder {
  private largeRunning = 0;
  private readonly largeWaiting: Waiter[] = [];
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly inProcess: SmallDecoder;
  private readonly small: SmallDecoder;
  private readonly large: LargeDecoder;

  constructor(
    private readonly limits: PosterLimits,
    private readonly metrics?: ServingMetrics,
    /** Where each lane decodes (tests replace them to control their timing). */
    lanes: { inProcess?: SmallDecoder; small?: SmallDecoder; large?: LargeDecoder } = {},
  ) {
    this.small = lanes.small ?? (limits.decodeProcesses > 0 ? new DecodePool(limits.decodeProcesses) : inProcessDecoder);
    this.inProcess = lanes.inProcess ?? inProcessDecoder;
    this.large = lanes.large ?? new DecodeProcess();
  }

  /** Stops the decoder processes. */
  close(): void {
    this.small.close();
    this.large.close();
  }

  /** Decodes still running (only with `decodeProcesses` 0 can one cut by its deadline run on, in libvips). */
  get active(): number {
    return this.running;
  }

  /** Large posters being decoded: never more than one. */
  get largeDecoding(): number {
    return this.largeRunning;
  }

  /** Large posters waiting for their turn. */
  get largeQueued(): number {
    return this.largeWaiting.length;
  }

  /** Resolves when no decode is running (tests, and anyone who wants the CPU back). */
  idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Checks the header against the limits; throws the ApiError a client gets. */
  async readHeader(bytes: Buffer): Promise<CheckedHeader> {
    if (isGif(bytes) && countGifFrames(bytes, this.limits.maxGifFrames) > this.limits.maxGifFrames) {
      throw new ApiError('POSTER_TOO_MANY_FRAMES', `'poster' is a GIF of more than ${this.limits.maxGifFrames} frames (the limit; only the first is used)`);
    }
    let header: PosterProbe;
    try {
      header = await probePoster(bytes);
    } catch (error) {
      throw posterApiError(error);
    }
    const { width, height, pixels } = header;
    if (!(pixels > 0)) throw new ApiError('POSTER_NOT_AN_IMAGE', "'poster' declares no size in its header");
    const size = `${width}×${height}`;
    // The decompression-bomb guard: a few kB can declare gigapixels; refuse before decoding a byte.
    if (pixels > this.limits.maxInputPixels) {
      throw new ApiError('POSTER_TOO_MANY_PIXELS', `'poster' is ${size} = ${pixels} pixels; at most ${this.limits.maxInputPixels} are accepted`);
    }
    if (Math.max(width, height) > this.limits.maxInputSide) {
      throw new ApiError('POSTER_SIDE_TOO_LONG', `'poster' is ${size} pixels; each side may be at most ${this.limits.maxInputSide}`);
    }
    const ratio = Math.max(width, height) / Math.min(width, height);
    if (ratio > this.limits.maxAspectRatio) {
      throw new ApiError('POSTER_ASPECT_RATIO_TOO_EXTREME', `'poster' is ${size} pixels, a side ${Math.round(ratio)} times the other; at most ${this.limits.maxAspectRatio} is accepted`);
    }
    let jpegScans = 0;
    if (header.format === 'jpeg') {
      jpegScans = countJpegScans(bytes, this.limits.maxJpegScans);
      if (jpegScans > this.limits.maxJpegScans) {
        throw new ApiError('POSTER_TOO_MANY_SCANS', `'poster' is a JPEG of more than ${this.limits.maxJpegScans} scans (the limit; encoders write about 10); each scan is decoded over every pixel`);
      }
    }
    return { ...header, jpegScans, ...(header.format === 'png' ? { png: readPngHeader(bytes) } : {}) };
  }

  /**
   * Header checks (once), then the decode to each `width × height` RGB size asked for (one decode per
   * size, the poster models' distinct input sizes) in its lane, all within one deadline. A large
   * poster holds the one-at-a-time slot for all of its sizes, decoded one after the other.
   * `onLane` hears the lane as soon as the header has chosen it, before any decode.
   */
  async decode(bytes: Buffer, sizes: readonly PosterSize[], onLane?: (lane: DecodeLane) => void): Promise<DecodedPoster> {
    if (sizes.length === 0) throw new RangeError('decode needs at least one size');
    const started = performance.now();
    const header = await this.readHeader(bytes);
    const lane = laneOf(header, this.limits);
    onLane?.(lane);
    const deadline = started + this.limits.decodeTimeoutMs;
    if (lane === 'large') await this.waitForLargeSlot(header, deadline);
    const limitInputPixels = this.limits.maxInputPixels;
    let cut = false;
    const stop = new AbortController();
    const decodeLarge = async () => {
      const out: Uint8Array[] = [];
      for (const size of sizes) {
        if (cut) throw new Error('past its deadline'); // answered already: start no further decode
        out.push(await this.large.decode(bytes, { ...size, limitInputPixels }));
      }
      return out;
    };
    // Side by side; settled before it counts as done, so that no decode outlives its count in the metrics.
    const decodeSmall = async () => {
      const decoder = lane === 'in-process' ? this.inProcess : this.small;
      const settled = await Promise.allSettled(sizes.map((size) => decoder.decode(bytes, { ...size, limitInputPixels }, stop.signal)));
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      return settled.map((r) => (r as PromiseFulfilledResult<Uint8Array>).value);
    };
    const work = this.track(lane, started, lane === 'large' ? decodeLarge() : decodeSmall());
    const pixels = await beforeDeadline(work, deadline, () => {
      work.catch(() => {}); // answered already; the outcome is only counted by the metrics
      cut = true;
      if (lane === 'large') this.large.kill('past its deadline');
      else stop.abort(new Error('past its deadline'));
      return new ApiError('POSTER_DECODE_TIMEOUT', `'poster' (${header.format}, ${header.width}×${header.height}) took longer than ${this.limits.decodeTimeoutMs} ms to decode; send a smaller image`);
    }).catch((error: unknown) => {
      throw posterApiError(error);
    });
    return { pixels, header, lane };
  }

  private async waitForLargeSlot(header: CheckedHeader, deadline: number): Promise<void> {
    if (this.largeRunning < 1) {
      this.largeRunning++;
      return;
    }
    const busy = () => new ApiError('POSTER_DECODE_BUSY', `other posters slow to decode (over ${this.limits.largePosterPixels} pixels of decode work, or in a format decoded one at a time; this one is a ${header.format} of ${header.width}×${header.height}) are being decoded; retry shortly`, { 'Retry-After': '1' });
    if (this.largeWaiting.length >= LARGE_POSTER_QUEUE) throw busy();
    let waiter!: Waiter;
    const slot = new Promise<void>((resolve) => {
      waiter = { start: resolve };
      this.largeWaiting.push(waiter);
    });
    this.metrics?.largePostersWaiting.set(this.largeWaiting.length);
    await beforeDeadline(slot, deadline, () => {
      const i = this.largeWaiting.indexOf(waiter);
      if (i >= 0) this.largeWaiting.splice(i, 1);
      this.metrics?.largePostersWaiting.set(this.largeWaiting.length);
      return busy();
    });
  }

  /** Counts a running decode and frees its lane when it has really ended (not when the request was answered). */
  private track<T>(lane: DecodeLane, started: number, work: Promise<T>): Promise<T> {
    this.running++;
    this.metrics?.posterDecodesRunning.inc();
    const finish = (outcome: 'ok' | 'error') => {
      this.metrics?.posterDecodeDuration.observe({ lane, outcome }, (performance.now() - started) / 1000);
      this.running--;
      this.metrics?.posterDecodesRunning.dec();
      if (lane === 'large') {
        const next = this.largeWaiting.shift();
        this.metrics?.largePostersWaiting.set(this.largeWaiting.length);
        if (next) next.start(); // the slot passes on: largeRunning stays 1
        else this.largeRunning--;
      }
      if (this.running === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        waiters.forEach((w) => w());
      }
    };
    work.then(() => finish('ok'), () => finish('error'));
    return work;
  }
}

/** `work`, or the error made by `onTimeout` if it has not settled by `deadline` (a performance.now() time). */
function beforeDeadline<T>(work: Promise<T>, deadline: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), Math.max(0, deadline - performance.now()));
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Maps the poster decoder's errors to API errors; anything else is a server fault and passes through. */
function posterApiError(error: unknown): unknown {
  if (!(error instanceof PosterError)) return error;
  switch (error.kind) {
    case 'unsupported':
      return new ApiError('POSTER_NOT_AN_IMAGE', `'poster' is not an image in a supported format (${POSTER_FORMATS.join(', ')})`);
    case 'too-large':
      return new ApiError('POSTER_TOO_MANY_PIXELS', "'poster' has more pixels than allowed");
    default:
      return new ApiError('POSTER_CORRUPT', "'poster' could not be decoded: the file is corrupt or truncated");
  }
}
