import { readFileSync } from 'node:fs';
import { decodePoster } from '@filmgenre/data-images';
import { blackPng, heldOutFilms } from '@filmgenre/serving-testing';
import { describe, expect, it } from 'vitest';
import { DecodePool, type PoolMember } from './decode-pool.js';

const OPTIONS = { width: 8, height: 8, limitInputPixels: 100_000_000 };

/** Stand-ins for decoder processes whose decodes finish only when told to, recording kills (aborts under way) and starts. */
function members(n: number) {
  const log: string[] = [];
  const pending: { member: number; finish: () => void }[] = [];
  let next = 0;
  const create = (): PoolMember => {
    const id = next++;
    return {
      decode: (_bytes, _options, signal) => new Promise<Uint8Array>((resolve, reject) => {
        const entry = { member: id, finish: () => resolve(new Uint8Array(3)) };
        pending.push(entry);
        signal?.addEventListener('abort', () => {
          log.push(`kill ${id}`);
          pending.splice(pending.indexOf(entry), 1);
          reject(new Error((signal.reason as Error).message));
        }, { once: true });
      }),
      warm: () => log.push(`warm ${id}`),
      close: () => log.push(`close ${id}`),
    };
  };
  const pool = new DecodePool(n, create);
  const started = async (count: number) => {
    while (pending.length < count) await new Promise((r) => setTimeout(r, 2));
  };
  return { pool, log, pending, started };
}

describe('DecodePool', () => {
  it('starts every process at once, decodes one poster per process, and queues the rest in order', async () => {
    const { pool, log, pending, started } = members(2);
    expect(log).toEqual(['warm 0', 'warm 1']);
    const order: number[] = [];
    const decodes = [0, 1, 2, 3].map((i) => pool.decode(Buffer.alloc(1), OPTIONS).then(() => order.push(i)));
    await started(2);
    expect(pending).toHaveLength(2);
    expect(pool.queued).toBe(2);
    while (order.length < 4) {
      pending.shift()?.finish();
      await new Promise((r) => setTimeout(r, 2));
    }
    await Promise.all(decodes);
    expect(order).toEqual([0, 1, 2, 3]);
    expect(pool.queued).toBe(0);
  });

  it('on abort, kills the process of a decode under way (and starts its replacement), and takes a waiting decode out of the queue', async () => {
    const { pool, log, pending, started } = members(1);
    const running = new AbortController();
    const waiting = new AbortController();
    const first = pool.decode(Buffer.alloc(1), OPTIONS, running.signal).catch((e: Error) => e.message);
    await started(1);
    const second = pool.decode(Buffer.alloc(1), OPTIONS, waiting.signal).catch((e: Error) => e.message);
    const third = pool.decode(Buffer.alloc(1), OPTIONS);
    expect(pool.queued).toBe(2);
    waiting.abort(new Error('waited past its deadline'));
    expect(await second).toBe('waited past its deadline');
    expect(pool.queued).toBe(1);
    running.abort(new Error('past its deadline'));
    expect(await first).toMatch(/past its deadline/);
    expect(log.slice(1)).toEqual(['kill 0', 'warm 0']);
    // The third gets the (replaced) process.
    await started(1);
    pending.shift()!.finish();
    await expect(third).resolves.toHaveLength(3);
  });

  it('refuses decodes after close and fails those still waiting', async () => {
    const { pool, log, started } = members(1);
    void pool.decode(Buffer.alloc(1), OPTIONS).catch(() => {});
    await started(1);
    const waiting = pool.decode(Buffer.alloc(1), OPTIONS);
    pool.close();
    await expect(waiting).rejects.toThrow(/closed/);
    await expect(pool.decode(Buffer.alloc(1), OPTIONS)).rejects.toThrow(/closed/);
    expect(log).toContain('close 0');
  });

  it('with real processes: decodes exactly like decodePoster, and a slow decode aborted at 300 ms ends at once while the other process goes on decoding', { timeout: 30_000 }, async () => {
    const pool = new DecodePool(2);
    try {
      const poster = readFileSync(heldOutFilms()[0]!.posterPath);
      const expected = await decodePoster(poster, OPTIONS);
      expect(Buffer.from(await pool.decode(poster, OPTIONS)).equals(Buffer.from(expected))).toBe(true);
      const slow = await blackPng(1, 5_000_000); // ≈ 2 s of decoding here
      const t0 = performance.now();
      const cut = pool.decode(slow, OPTIONS, AbortSignal.timeout(300)).then(() => 'decoded', (e: unknown) => e);
      // The other process answers the usual posters meanwhile.
      for (let i = 0; i < 5; i++) expect(Buffer.from(await pool.decode(poster, OPTIONS)).equals(Buffer.from(expected))).toBe(true);
      expect(await cut).toBeInstanceOf(Error);
      expect(performance.now() - t0).toBeLessThan(1_500);
      // Both processes decode again (the killed one was replaced).
      const both = await Promise.all([pool.decode(poster, OPTIONS), pool.decode(poster, OPTIONS)]);
      for (const pixels of both) expect(Buffer.from(pixels).equals(Buffer.from(expected))).toBe(true);
    } finally {
      pool.close();
    }
  });
});
