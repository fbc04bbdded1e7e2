import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { decodePoster, PosterError } from '@filmgenre/data-images';
import { afterAll, describe, expect, it } from 'vitest';
import { DecodeProcess } from './decode/decode-process.js';
import { ApiError } from './errors.js';
import { decodeWork, inProcessDecoder, laneOf, LARGE_POSTER_QUEUE, PosterDecoder, type PosterLimits } from './poster-decoder.js';
import { defaultConfig } from './config.js';
import { blackPng, heldOutFilms, manyFrameGif, scanBombJpeg } from '@filmgenre/serving-testing';
import sharp from 'sharp';

const limits: PosterLimits = { maxInputPixels: 25_000_000, maxInputSide: 10_000, maxAspectRatio: 10, maxJpegScans: 100, maxGifFrames: 1_000, decodeTimeoutMs: 200, largePosterPixels: 1_000, inProcessDecodePixels: 0, decodeProcesses: 0 };

/** Decodes that finish only when told to (both lanes), so the lanes can be watched without burning CPU. */
function controlledLanes() {
  const pending: { lane: string; finish: () => void; fail: (e: Error) => void }[] = [];
  const decodeIn = (lane: string) => () => new Promise<Uint8Array>((resolve, reject) => pending.push({ lane, finish: () => resolve(new Uint8Array(3)), fail: reject }));
  const killed: string[] = [];
  const lanes = {
    small: { decode: decodeIn('small'), close: () => {} },
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
    const small = {
      decode: (bytes: Buffer) => {
        decoded.push(bytes.length);
        return Promise.resolve(new Uint8Array(SQUARE[0]!.width * SQUARE[0]!.height * 3));
      },
      close: () => {},
    };
    const decoder = new PosterDecoder({ ...limits, largePosterPixels: 1e12 }, undefined, { small, large: { decode: () => Promise.reject(new Error('must not decode')), kill: () => {}, close: () => {} } });
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
    const decoder = new PosterDecoder(limits, undefined, { small: { decode: never, close: () => {} }, large: { decode: never, kill: () => {}, close: () => {} } });
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

  it('decodes a poster once per size asked for (square and not), in either lane and either small decoder, each exactly like decodePoster', async () => {
    const poster = readFileSync(heldOutFilms()[0]!.posterPath); // 150 × 300 = 45,000 pixels
    const sizes = [{ width: 16, height: 16 }, { width: 32, height: 64 }];
    const expected = await Promise.all(sizes.map((size) => decodePoster(poster, size)));
    // [largePosterPixels, inProcessDecodePixels, decodeProcesses] → the lane the 45,000-pixel poster takes.
    const setups = [[2_000_000, 0, 1, 'small'], [2_000_000, 0, 0, 'small'], [2_000_000, 250_000, 1, 'in-process'], [1_000, 0, 1, 'large']] as const;
    for (const [largePosterPixels, inProcessDecodePixels, decodeProcesses, lane] of setups) {
      // A deadline long enough for a decoder process to start through tsx on a busy machine.
      const decoder = new PosterDecoder({ ...limits, decodeTimeoutMs: 60_000, largePosterPixels, inProcessDecodePixels, decodeProcesses });
      try {
        const decoded = await decoder.decode(poster, sizes);
        expect(decoded.lane).toBe(lane);
        expect(decoded.header).toMatchObject({ width: 150, height: 300 });
        expect(decoded.pixels.map((p) => p.length)).toEqual([16 * 16 * 3, 32 * 64 * 3]);
        decoded.pixels.forEach((p, i) => expect(Buffer.from(p).equals(Buffer.from(expected[i]!)), `${decoded.lane} lane, ${decodeProcesses} processes, size ${i}`).toBe(true));
      } finally {
        decoder.close();
      }
    }
  });

  it('stops a usual poster that decodes past its deadline by killing its decoder process, which is replaced', { timeout: 60_000 }, async () => {
    // Bounds opened so that 1 × 5,000,000 (≈ 2 s of decoding here) reaches the pool of the usual lane.
    const decoder = new PosterDecoder({ ...limits, maxInputSide: 1e9, maxAspectRatio: 1e9, largePosterPixels: 1e12, decodeTimeoutMs: 300, decodeProcesses: 1 });
    const poster = readFileSync(heldOutFilms()[0]!.posterPath);
    /** Decodes the usual poster, retrying while the process starts (through tsx, longer than 300 ms on a busy machine). */
    const decodeOnceStarted = async () => {
      for (let tries = 0; ; tries++) {
        const code = await codeOf(decoder.decode(poster, SQUARE));
        if (code === 'OK') return;
        expect(tries < 100 && code === 'POSTER_DECODE_TIMEOUT', code).toBe(true);
      }
    };
    try {
      await decodeOnceStarted();
      const t0 = performance.now();
      const slow = await decoder.decode(await blackPng(1, 5_000_000), SQUARE).then(() => 'OK', (e: unknown) => e);
      expect(slow).toMatchObject({ code: 'POSTER_DECODE_TIMEOUT', status: 422 });
      await decoder.idle(); // the decode ended with its process, not when libvips would have finished
      expect(performance.now() - t0).toBeLessThan(1_500);
      await decodeOnceStarted(); // by the process that replaced it
    } finally {
      decoder.close();
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

  it('drops a call aborted while its process starts, without killing the start, and kills the process once the poster is sent', { timeout: 30_000 }, async () => {
    const fresh = new DecodeProcess({ niceness: 0 });
    try {
      const poster = readFileSync(heldOutFilms()[0]!.posterPath);
      const options = { width: 8, height: 8, limitInputPixels: 1_000_000 };
      const early = fresh.decode(poster, options, AbortSignal.abort(new Error('too late'))).catch((e: Error) => e.message);
      expect(await early).toBe('too late');
      const starting = new AbortController();
      const dropped = fresh.decode(poster, options, starting.signal).catch((e: Error) => e.message);
      const started = fresh.pid;
      starting.abort(new Error('past its deadline'));
      expect(await dropped).toBe('past its deadline');
      expect(await fresh.decode(poster, options)).toHaveLength(8 * 8 * 3); // the same start went on
      expect(fresh.pid).toBe(started);
      const slow = fresh.decode(await blackPng(1, 5_000_000), { ...options, limitInputPixels: 100_000_000 }, AbortSignal.timeout(200)).catch((e: Error) => e.message);
      expect(await slow).toMatch(/abort|timeout|time/i);
      expect(fresh.pid).toBeUndefined(); // killed
    } finally {
      fresh.close();
    }
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

/** CPU time of `work` in this process, every thread (sharp decodes on libuv's): what a decode costs, whatever else the shared machine runs. */
async function cpuMs(work: () => Promise<unknown>): Promise<number> {
  const before = process.cpuUsage();
  await work();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

const noise = (width: number, height: number, channels: 3 | 4 = 3) =>
  sharp({ create: { width, height, channels, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 60 } } });

describe('the costliest posters each lane admits, crafted per format (issue 21)', () => {
  const defaults = defaultConfig();
  const header = (bytes: Buffer) => new PosterDecoder({ ...defaults, decodeProcesses: 0 }, undefined, { small: inProcessDecoder, large: { decode: () => Promise.reject(new Error('unused')), kill: () => {}, close: () => {} } }).readHeader(bytes);

  it('sends posters by the decode work their header announces: the usual ones to the pool, scan-heavy JPEGs, large ones, GIF, TIFF and AVIF one at a time', async () => {
    const lane = async (bytes: Buffer) => laneOf(await header(bytes), defaults);
    expect(await lane(readFileSync(heldOutFilms()[0]!.posterPath))).toBe('in-process'); // 150 × 300, baseline
    expect(await lane(await noise(1400, 1400).jpeg({ quality: 90 }).toBuffer())).toBe('small'); // 1.96 MP baseline
    expect(await lane(await noise(300, 450).jpeg({ quality: 90, progressive: true }).toBuffer())).toBe('small'); // a progressive poster, 10 scans
    expect(await lane(await noise(1000, 1500).jpeg({ quality: 90, progressive: true }).toBuffer())).toBe('large'); // a progressive photo
    expect(await lane(scanBombJpeg(1400, 1400, 99))).toBe('large'); // 100 scans
    expect(await lane(scanBombJpeg(160, 160, 99))).toBe('small'); // 100 scans of 25,600 pixels
    expect(await lane(await blackPng(1400, 1400))).toBe('small'); // 8-bit RGB
    expect(await lane(await blackPng(1500, 1500))).toBe('large');
    expect(await lane(await noise(500, 500, 4).toColourspace('rgb16').png({ progressive: true }).toBuffer())).toBe('large'); // 16-bit RGBA, interlaced
    expect(await lane(await noise(800, 800).webp().toBuffer())).toBe('large');
    for (const format of ['gif', 'tiff', 'avif'] as const) expect(await lane(await noise(32, 32)[format]().toBuffer()), format).toBe('large');
  });

  // What makes a lane's decodes cheap: at most its limit of decode work each (in-process: 250,000;
  // the pool: 2,000,000), in formats whose decode time the header bounds. The costliest file of each
  // format at each limit, decoded here and timed by CPU time, which the machine's other load does
  // not inflate: in the server process a few ms, in the pool well under the deadline.
  it('decodes the costliest poster of each lane and format within a fiftieth (in-process) or a tenth (pool) of the deadline', { timeout: 120_000 }, async () => {
    const worst: [string, 'in-process' | 'small', Buffer][] = [
      ['baseline JPEG of noise, 1414 × 1414, quality 100, 4:4:4', 'small', await noise(1414, 1414).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer()],
      ['progressive JPEG of noise, 500 × 500 (10 scans), quality 100, 4:4:4', 'small', await noise(500, 500).jpeg({ quality: 100, progressive: true, chromaSubsampling: '4:4:4' }).toBuffer()],
      ['scan bomb of 100 scans, 160 × 160', 'small', scanBombJpeg(160, 160, 99)],
      ['16-bit RGBA interlaced PNG of noise, 430 × 430', 'small', await noise(430, 430, 4).toColourspace('rgb16').png({ progressive: true, compressionLevel: 1 }).toBuffer()],
      ['black interlaced PNG, 990 × 990 (zlib at its highest ratio)', 'small', await sharp(await blackPng(990, 990)).png({ progressive: true, compressionLevel: 9 }).toBuffer()],
      ['lossless WebP of RGBA noise, 630 × 630', 'small', await noise(630, 630, 4).webp({ lossless: true, effort: 0 }).toBuffer()],
      ['lossy WebP of noise, 630 × 630', 'small', await noise(630, 630).webp({ quality: 100 }).toBuffer()],
      ['baseline JPEG of noise, 500 × 500, quality 100, 4:4:4', 'in-process', await noise(500, 500).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer()],
      ['progressive JPEG of noise, 178 × 178 (10 scans), quality 100, 4:4:4', 'in-process', await noise(178, 178).jpeg({ quality: 100, progressive: true, chromaSubsampling: '4:4:4' }).toBuffer()],
      ['scan bomb of 100 scans, 57 × 57', 'in-process', scanBombJpeg(57, 57, 99)],
      ['16-bit RGBA interlaced PNG of noise, 150 × 150', 'in-process', await noise(150, 150, 4).toColourspace('rgb16').png({ progressive: true, compressionLevel: 1 }).toBuffer()],
      ['black interlaced PNG, 350 × 350', 'in-process', await sharp(await blackPng(350, 350)).png({ progressive: true, compressionLevel: 9 }).toBuffer()],
      ['lossy WebP of noise, 223 × 223', 'in-process', await noise(223, 223).webp({ quality: 100 }).toBuffer()],
    ];
    const costs: Record<string, number> = {};
    for (const [name, lane, bytes] of worst) {
      const checked = await header(bytes);
      expect(laneOf(checked, defaults), name).toBe(lane);
      const limit = lane === 'in-process' ? defaults.inProcessDecodePixels : defaults.largePosterPixels;
      expect(decodeWork(checked), name).toBeGreaterThan(0.4 * limit); // near the limit, not a small one
      await decodePoster(bytes, { width: 128, height: 256 }); // warm
      costs[name] = Math.round(await cpuMs(() => decodePoster(bytes, { width: 128, height: 256 })));
    }
    console.log(JSON.stringify({ cpuMsPerDecode: costs }));
    for (const [name, lane] of worst) expect(costs[name], name).toBeLessThan(defaults.decodeTimeoutMs / (lane === 'in-process' ? 50 : 10));
  });

  // The header read runs in the server process before any lane: it must be cheap whatever the file.
  it('reads the header of every crafted file, whatever its format or structure, in milliseconds', { timeout: 120_000 }, async () => {
    const files: Record<string, Buffer> = {
      'GIF of 700,000 frames (10 MB), refused from its blocks': manyFrameGif(1400, 1400, 700_000),
      'GIF of 1,000 frames, at the frame limit': manyFrameGif(1400, 1400, 1_000),
      'scan bomb of 50,000 scans (654 KB)': scanBombJpeg(1400, 1400, 50_000),
      'PNG of 1 × 25,000,000 (97 KB)': await blackPng(1, 25_000_000),
      'AVIF of noise, 3000 × 3000': await noise(3000, 3000).avif({ quality: 50, effort: 0 }).toBuffer(),
    };
    const costs: Record<string, number> = {};
    for (const [name, bytes] of Object.entries(files)) {
      await header(bytes).catch(() => {}); // warm
      costs[name] = Math.round(await cpuMs(() => header(bytes).catch(() => {})));
    }
    console.log(JSON.stringify({ cpuMsPerHeaderRead: costs }));
    for (const [name, ms] of Object.entries(costs)) expect(ms, name).toBeLessThan(100);
    await expect(header(files['GIF of 700,000 frames (10 MB), refused from its blocks']!)).rejects.toMatchObject({ code: 'POSTER_TOO_MANY_FRAMES', status: 422 });
    await expect(header(files['GIF of 1,000 frames, at the frame limit']!)).resolves.toMatchObject({ format: 'gif', width: 1400, height: 1400 });
  });
});
