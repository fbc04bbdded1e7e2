// No poster can stall the server (issue 12), measured on the real server in its own process (model
// workers, the production code path), with this test process as the clients: a crafted poster sent in
// a loop next to normal traffic must leave the normal requests' p99 within 2× of its unloaded value.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blackPng, quantile, scanBombJpeg } from '@filmgenre/serving-testing';
import { normalTraffic, prepareModels, type TestModels } from './testing/harness.js';
import { withServer } from './testing/process.js';

let models: TestModels;
let films: { poster: Buffer; overview: string }[];

beforeAll(async () => {
  models = await prepareModels();
  films = models.heldOut.slice(0, 16).map((f) => ({ poster: readFileSync(f.posterPath), overview: f.overview }));
});

afterAll(() => models?.cleanup());

/**
 * `attackers` clients, each sending its crafted poster (client i sends `posters[i % posters.length]`)
 * again 250 ms after its previous answer, until `done` settles: four crafted posters at once, over and
 * over (issue 12's case), without turning the test into a flood of instant refusals, which would
 * measure request volume instead. Each multipart body is built once, so the clients' own work stays
 * small beside the server's.
 */
async function attack(url: string, posters: Buffer[], attackers: number, done: Promise<unknown>) {
  let over = false;
  void done.finally(() => (over = true));
  const boundary = 'crafted-poster-boundary';
  const bodies = posters.map((poster) => Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="poster"; filename="crafted.png"\r\nContent-Type: image/png\r\n\r\n`),
    poster,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]));
  const answers: { poster: number; code: string; ms: number }[] = [];
  await Promise.all(Array.from({ length: attackers }, async (_, client) => {
    const poster = client % bodies.length;
    while (!over) {
      const started = performance.now();
      const res = await fetch(`${url}/v1/predict`, { method: 'POST', body: bodies[poster], headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` } });
      const json = (await res.json()) as { error?: { code: string } };
      answers.push({ poster, code: `${res.status} ${json.error?.code ?? 'OK'}`, ms: performance.now() - started });
      await new Promise((r) => setTimeout(r, 250));
    }
  }));
  return answers;
}

/** Resolves once the server has no poster decode running (a decode cut by its deadline goes on in libvips). */
async function decodesIdle(url: string): Promise<void> {
  for (;;) {
    const metrics = await (await fetch(`${url}/metrics`)).text();
    if (/^poster_decodes_running 0$/m.test(metrics)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Normal traffic alone and next to the attack, alternated over a few rounds so that the machine's
 * drift (it is shared) falls on both alike; each round starts with the server's decodes idle. Returns
 * the pooled p99 of each.
 */
async function measure(url: string, ...posters: Buffer[]) {
  const clients = 2;
  const perRound = 40;
  await normalTraffic(url, films, clients, 5); // warm-up
  const unloaded: number[] = [];
  const loaded: number[] = [];
  const answers: { poster: number; code: string; ms: number }[] = [];
  for (let round = 0; round < 5; round++) {
    await decodesIdle(url);
    unloaded.push(...(await normalTraffic(url, films, clients, perRound)));
    const traffic = normalTraffic(url, films, clients, perRound);
    answers.push(...(await attack(url, posters, 4, traffic)));
    loaded.push(...(await traffic));
  }
  await decodesIdle(url);
  const report = {
    unloadedP99Ms: Math.round(quantile(unloaded, 0.99)), loadedP99Ms: Math.round(quantile(loaded, 0.99)),
    ratio: +(quantile(loaded, 0.99) / quantile(unloaded, 0.99)).toFixed(2),
    medianMs: [quantile(unloaded, 0.5), quantile(loaded, 0.5)].map(Math.round), samples: unloaded.length,
    attacks: answers.length, codes: [...new Set(answers.map((a) => a.code))].sort(), slowestAttackMs: Math.round(Math.max(...answers.map((a) => a.ms))),
    loadAverage: loadavg().map((x) => +x.toFixed(2)),
  };
  console.log(JSON.stringify(report));
  const codesOf = (poster: number) => [...new Set(answers.filter((a) => a.poster === poster).map((a) => a.code))].sort();
  return { unloaded: quantile(unloaded, 0.99), loaded: quantile(loaded, 0.99), codes: report.codes, codesOf, report, answers };
}

describe('a crafted poster next to normal traffic (server in its own process)', () => {
  // Timing on a shared machine: each run alternates loaded and unloaded rounds, and may be retried.
  // Two posters refused from their headers, two clients each, measured together (one server, one
  // baseline): the 97 KB PNG declaring 1 × 25,000,000 pixels (issue 12), and the scan-bomb JPEG of
  // 1400 × 1400 and 50,000 scans (654 KB; it took 35 s to decode, issue 21). Refused in milliseconds,
  // they cost the server next to nothing (equal medians loaded and unloaded in every run), so a p99 over
  // 2× here is the client process's own noise (seen 1.2–2.2×): two retries.
  it('crafted posters refused from their headers (a PNG declaring 1 × 25,000,000 pixels; a JPEG of 50,000 scans that took 35 s to decode), four at once, are answered in milliseconds, and the normal p99 stays within 2×', { retry: 2, timeout: 300_000 }, async () => {
    const tall = await blackPng(1, 25_000_000);
    expect(tall.length).toBeLessThan(100_000);
    const bomb = scanBombJpeg(1400, 1400, 50_000);
    expect(bomb.length).toBeLessThan(700_000);
    await withServer(models.dir, [], async (url) => {
      const result = await measure(url, tall, bomb);
      expect(result.codesOf(0)).toEqual(['422 POSTER_SIDE_TOO_LONG']);
      expect(result.codesOf(1)).toEqual(['422 POSTER_TOO_MANY_SCANS']);
      expect(quantile(result.answers.map((a) => a.ms), 0.5)).toBeLessThan(250);
      expect(result.report.slowestAttackMs).toBeLessThan(3_000); // the default --decode-timeout-ms
      expect(result.loaded).toBeLessThanOrEqual(2 * result.unloaded);
    });
  });

  // The slowest poster the default bounds admit that we know of: the scan bomb at the scan limit (100)
  // and the pixel limit (5000 × 5000, 49 KB). Its decode work sends it to the one-at-a-time lane, so
  // four at once decode one after the other, at a lower priority, and the usual posters never wait.
  it('four scan bombs at the scan and pixel limits (100 scans, 5000 × 5000) are answered within the decode deadline, one decode at a time, and the normal p99 stays within 2×', { retry: 1, timeout: 240_000 }, async () => {
    const bomb = scanBombJpeg(5000, 5000, 99);
    await withServer(models.dir, [], async (url) => {
      const result = await measure(url, bomb);
      // libvips reads the whole file, then calls it corrupt (its DC scan ends early at this size): 400
      // after the full decode work; or cut at the deadline, or turned away while another one decodes.
      const allowed = ['400 POSTER_CORRUPT', '422 POSTER_DECODE_TIMEOUT', '503 POSTER_DECODE_BUSY'];
      expect(result.codes.every((c) => allowed.includes(c)), result.codes.join()).toBe(true);
      expect(result.report.slowestAttackMs).toBeLessThan(3_000 + 1_000); // the default --decode-timeout-ms, and the answer's way back
      expect(result.loaded).toBeLessThanOrEqual(2 * result.unloaded);
    });
  });

  // A stress of the large-poster lane, beyond what the default bounds let through: a stream of posters
  // that each decode for the whole deadline keeps one of two vCPUs busy (niceness does not give it
  // back, measured), so here the bound is 4×, enough to catch a stall (normal decodes queued behind
  // slow ones waited 35 s before the lane existed); measured 1.3–2.2× (docs/benchmarks/serving.md).
  it('a poster that passes the header bounds but decodes slowly is cut at the deadline, one decode at a time, and normal requests keep being answered', { retry: 1, timeout: 240_000 }, async () => {
    // Bounds opened so that 1 × 5,000,000 (20 KB; ≈ 2 s of decoding here, over --large-poster-pixels)
    // reaches the large-poster decoder process, which is killed at each deadline.
    const slow = await blackPng(1, 5_000_000);
    await withServer(models.dir, ['--max-input-side', '100000000', '--max-aspect-ratio', '100000000', '--decode-timeout-ms', '1000'], async (url) => {
      const result = await measure(url, slow);
      // Cut at the deadline, or turned away while another one decodes (on a machine fast enough to
      // decode it within the deadline, it is simply answered).
      const allowed = ['422 POSTER_DECODE_TIMEOUT', '503 POSTER_DECODE_BUSY', '200 OK'];
      expect(result.codes.every((c) => allowed.includes(c)), result.codes.join()).toBe(true);
      expect(result.codes.some((c) => c !== '503 POSTER_DECODE_BUSY')).toBe(true);
      // Answered about at the deadline, never when libvips would finish.
      expect(result.report.slowestAttackMs).toBeLessThan(1_000 + 1_000);
      expect(result.loaded).toBeLessThanOrEqual(4 * result.unloaded);
    });
  });
});
