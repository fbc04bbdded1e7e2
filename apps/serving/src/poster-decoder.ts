// A poster upload → the model's input pixels, without letting any poster stall the server.
//
// What stalls it is measured (issue 12, 2 cores): a 97 KB PNG declaring 1 × 25,000,000 pixels takes
// 7–9 s to decode; the event loop stays free (sharp works on libuv's thread pool), but libuv has only
// 4 threads, and four such decodes held all of them: a normal poster's decode then waited 35 s.
// sharp's own `timeout` does not help there: libvips checks it between regions of work and stopped
// that PNG only at 64–96 % done, after 7–9 s. So:
//   1. bounds from the header, before any pixel is decoded: pixels, each side, aspect ratio, and a
//      JPEG's number of scans (decode-time grows with them; see decode/jpeg-scans.ts);
//   2. posters above `largePosterPixels` are decoded one at a time, in a child process at a lower CPU
//      priority (decode/decode-process.ts), with a bounded wait; small ones, the usual case, are
//      decoded here and never queue behind them;
//   3. a deadline per decode: the request is answered when it passes; a large poster's decoder
//      process is then killed, so the decode stops too (a small one's cannot be stopped, and runs out).
import { decodePoster, PosterError, POSTER_FORMATS, probePoster, type PosterProbe } from '@filmgenre/data-images';
import type { ServingConfig } from './config.js';
import { ApiError } from './errors.js';
import { DecodeProcess } from './decode/decode-process.js';
import { countJpegScans } from './decode/jpeg-scans.js';
import type { ServingMetrics } from './metrics.js';
import type { PosterSize } from './models.js';

export type PosterLimits = Pick<ServingConfig, 'maxInputPixels' | 'maxInputSide' | 'maxAspectRatio' | 'maxJpegScans' | 'decodeTimeoutMs' | 'largePosterPixels'>;

/** Large posters allowed to wait for the large-poster slot; more get POSTER_DECODE_BUSY at once. */
export const LARGE_POSTER_QUEUE = 8;

export type DecodeLane = 'small' | 'large';

export interface DecodedPoster {
  /** The poster as width × height × 3 RGB bytes for each size asked for, in the same order: the poster models' inputs. */
  pixels: Uint8Array[];
  header: PosterProbe;
  lane: DecodeLane;
}

interface Waiter {
  start: () => void;
}

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
  private readonly small: typeof decodePoster;
  private readonly large: LargeDecoder;

  constructor(
    private readonly limits: PosterLimits,
    private readonly metrics?: ServingMetrics,
    /** Where each lane decodes (tests replace them to control their timing). */
    lanes: { small?: typeof decodePoster; large?: LargeDecoder } = {},
  ) {
    this.small = lanes.small ?? decodePoster;
    this.large = lanes.large ?? new DecodeProcess();
  }

  /** Stops the large-poster decoder process. */
  close(): void {
    this.large.close();
  }

  /** Decodes still running (a small one cut by its deadline runs out in libvips). */
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
  async readHeader(bytes: Buffer): Promise<PosterProbe> {
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
    if (header.format === 'jpeg') {
      const scans = countJpegScans(bytes, this.limits.maxJpegScans);
      if (scans > this.limits.maxJpegScans) {
        throw new ApiError('POSTER_TOO_MANY_SCANS', `'poster' is a JPEG of more than ${this.limits.maxJpegScans} scans (the limit; encoders write about 10); each scan is decoded over every pixel`);
      }
    }
    return header;
  }

  /**
   * Header checks (once), then the decode to each `width × height` RGB size asked for (one decode per
   * size, the poster models' distinct input sizes) in its lane, all within one deadline. A large
   * poster holds the one-at-a-time slot for all of its sizes, decoded one after the other.
   */
  async decode(bytes: Buffer, sizes: readonly PosterSize[]): Promise<DecodedPoster> {
    if (sizes.length === 0) throw new RangeError('decode needs at least one size');
    const started = performance.now();
    const header = await this.readHeader(bytes);
    const lane: DecodeLane = header.pixels > this.limits.largePosterPixels ? 'large' : 'small';
    const deadline = started + this.limits.decodeTimeoutMs;
    if (lane === 'large') await this.waitForLargeSlot(header, deadline);
    const limitInputPixels = this.limits.maxInputPixels;
    let cut = false;
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
      const settled = await Promise.allSettled(sizes.map((size) => this.small(bytes, { ...size, limitInputPixels })));
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      return settled.map((r) => (r as PromiseFulfilledResult<Uint8Array>).value);
    };
    const work = this.track(lane, started, lane === 'large' ? decodeLarge() : decodeSmall());
    const pixels = await beforeDeadline(work, deadline, () => {
      work.catch(() => {}); // answered already; the outcome is only counted by the metrics
      cut = true;
      if (lane === 'large') this.large.kill('past its deadline');
      return new ApiError('POSTER_DECODE_TIMEOUT', `'poster' (${header.format}, ${header.width}×${header.height}) took longer than ${this.limits.decodeTimeoutMs} ms to decode; send a smaller image`);
    }).catch((error: unknown) => {
      throw posterApiError(error);
    });
    return { pixels, header, lane };
  }

  private async waitForLargeSlot(header: PosterProbe, deadline: number): Promise<void> {
    if (this.largeRunning < 1) {
      this.largeRunning++;
      return;
    }
    const busy = () => new ApiError('POSTER_DECODE_BUSY', `other large posters (over ${this.limits.largePosterPixels} pixels; this one is ${header.width}×${header.height}) are being decoded; retry shortly`, { 'Retry-After': '1' });
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
