import { describe, expect, it, vi } from 'vitest';
import { BatcherClosedError, MicroBatcher, type BatchInfo } from './micro-batcher.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recording(options: { maxBatch: number; windowMs: number; delayMs?: number; concurrency?: number; fail?: (x: number) => boolean }) {
  const batches: number[][] = [];
  const infos: BatchInfo[] = [];
  let running = 0;
  const overlap = { max: 0 };
  const batcher = new MicroBatcher<number, number>({
    maxBatch: options.maxBatch,
    windowMs: options.windowMs,
    ...(options.concurrency ? { concurrency: options.concurrency } : {}),
    onBatch: (info) => infos.push(info),
    async run(inputs) {
      batches.push([...inputs]);
      overlap.max = Math.max(overlap.max, ++running);
      if (options.delayMs) await sleep(options.delayMs);
      running--;
      if (options.fail && inputs.some(options.fail)) throw new Error(`bad input in ${inputs.join(',')}`);
      return inputs.map((x) => x * 10);
    },
  });
  return { batcher, batches, infos, overlap };
}

describe('MicroBatcher', () => {
  it('runs up to `concurrency` batches at once (one per worker), never more', async () => {
    const { batcher, batches, overlap } = recording({ maxBatch: 4, windowMs: 1, delayMs: 30, concurrency: 2 });
    const inputs = Array.from({ length: 20 }, (_, i) => i);
    const results = await Promise.all(inputs.map((x) => batcher.submit(x)));
    expect(results).toEqual(inputs.map((x) => x * 10));
    expect(overlap.max).toBe(2);
    expect(batches.flat().sort((a, b) => a - b)).toEqual(inputs);
    expect(Math.max(...batches.map((b) => b.length))).toBe(4);
  });

  it('with concurrency 1, a batch never starts while another runs', async () => {
    const { batcher, overlap } = recording({ maxBatch: 4, windowMs: 1, delayMs: 10 });
    await Promise.all(Array.from({ length: 12 }, (_, i) => batcher.submit(i)));
    expect(overlap.max).toBe(1);
  });

  it('close() waits for every running batch', async () => {
    const { batcher } = recording({ maxBatch: 2, windowMs: 1, delayMs: 20, concurrency: 3 });
    const pending = Array.from({ length: 7 }, (_, i) => batcher.submit(i));
    await batcher.close();
    await expect(Promise.all(pending)).resolves.toEqual([0, 10, 20, 30, 40, 50, 60]);
    await expect(batcher.submit(1)).rejects.toThrow(BatcherClosedError);
  });

  it('rejects a concurrency below 1', () => {
    expect(() => new MicroBatcher({ maxBatch: 1, windowMs: 0, concurrency: 0, run: async (x: number[]) => x })).toThrow(/concurrency must be an integer ≥ 1/);
  });

  it('forms one batch from items submitted within the window, and preserves order', async () => {
    const { batcher, batches, infos } = recording({ maxBatch: 32, windowMs: 20 });
    const results = await Promise.all([1, 2, 3, 4, 5].map((x) => batcher.submit(x)));
    expect(results).toEqual([10, 20, 30, 40, 50]);
    expect(batches).toEqual([[1, 2, 3, 4, 5]]);
    expect(infos).toHaveLength(1);
    expect(infos[0]).toMatchObject({ size: 5, ok: true });
  });

  it('flushes as soon as maxBatch items are queued, without waiting for the window', async () => {
    const { batcher, batches } = recording({ maxBatch: 4, windowMs: 60_000 });
    const started = Date.now();
    const results = await Promise.all([1, 2, 3, 4].map((x) => batcher.submit(x)));
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(results).toEqual([10, 20, 30, 40]);
    expect(batches).toEqual([[1, 2, 3, 4]]);
  });

  it('flushes a partial batch when the window elapses', async () => {
    vi.useFakeTimers();
    try {
      const { batcher, batches } = recording({ maxBatch: 32, windowMs: 5 });
      const pending = batcher.submit(7);
      await vi.advanceTimersByTimeAsync(4);
      expect(batches).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(batches).toEqual([[7]]);
      await expect(pending).resolves.toBe(70);
    } finally {
      vi.useRealTimers();
    }
  });

  it('splits more than maxBatch items into several batches, in order', async () => {
    const { batcher, batches } = recording({ maxBatch: 3, windowMs: 1 });
    const inputs = Array.from({ length: 8 }, (_, i) => i);
    const results = await Promise.all(inputs.map((x) => batcher.submit(x)));
    expect(results).toEqual(inputs.map((x) => x * 10));
    expect(batches.flat()).toEqual(inputs);
    expect(batches.every((b) => b.length <= 3)).toBe(true);
    expect(batches).toHaveLength(3);
  });

  it('gathers items that arrive while a batch runs into the next batch', async () => {
    const { batcher, batches } = recording({ maxBatch: 32, windowMs: 1, delayMs: 30 });
    const first = batcher.submit(1);
    await sleep(10); // the first batch is running now
    const rest = [2, 3, 4].map((x) => batcher.submit(x));
    await Promise.all([first, ...rest]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('isolates errors: only the failing item rejects, its batch mates still get their answer', async () => {
    const { batcher, batches } = recording({ maxBatch: 32, windowMs: 5, fail: (x) => x === 3 });
    const settled = await Promise.allSettled([1, 2, 3, 4].map((x) => batcher.submit(x)));
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(settled.filter((s) => s.status === 'fulfilled').map((s) => (s as PromiseFulfilledResult<number>).value)).toEqual([10, 20, 40]);
    expect((settled[2] as PromiseRejectedResult).reason).toBeInstanceOf(Error);
    expect(batches[0]).toEqual([1, 2, 3, 4]);
    // the batcher keeps working after a failure
    await expect(batcher.submit(5)).resolves.toBe(50);
  });

  it('rejects when run returns the wrong number of outputs', async () => {
    const batcher = new MicroBatcher<number, number>({ maxBatch: 8, windowMs: 1, run: async () => [] });
    await expect(batcher.submit(1)).rejects.toThrow(/0 outputs for 1 inputs/);
  });

  it('reports batch size, wait and run time per item', async () => {
    const { batcher } = recording({ maxBatch: 2, windowMs: 50, delayMs: 5 });
    const [a, b] = await Promise.all([batcher.submitWithInfo(1), batcher.submitWithInfo(2)]);
    expect(a).toMatchObject({ value: 10, batchSize: 2 });
    expect(b!.runMs).toBeGreaterThanOrEqual(4);
    expect(a!.waitMs).toBeGreaterThanOrEqual(0);
  });

  it('close() answers everything queued, then refuses new items', async () => {
    const { batcher, batches } = recording({ maxBatch: 2, windowMs: 60_000, delayMs: 5 });
    const pending = [1, 2, 3].map((x) => batcher.submit(x));
    await batcher.close();
    await expect(Promise.all(pending)).resolves.toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2], [3]]);
    await expect(batcher.submit(4)).rejects.toBeInstanceOf(BatcherClosedError);
  });

  it('estimates the wait of a new item from the items ahead of it and the measured time per item', async () => {
    const { batcher, infos } = recording({ maxBatch: 1, windowMs: 0, delayMs: 40 });
    expect(batcher.backlogMs).toBe(0); // nothing measured yet: nothing to refuse on
    await batcher.submit(1);
    const perItem = infos[0]!.runMs;
    expect(perItem).toBeGreaterThanOrEqual(35);
    const queued = [1, 2, 3, 4].map((x) => batcher.submit(x));
    await sleep(5); // one runs, three wait
    expect(batcher.backlogMs).toBeCloseTo(4 * perItem, 0);
    await Promise.all(queued);
    expect(batcher.backlogMs).toBe(0);
  });

  it('with restRatio, rests as long as a batch ran before the next starts, and counts only the rest left in its backlog', async () => {
    const starts: number[] = [];
    const batcher = new MicroBatcher<number, number>({
      maxBatch: 1, windowMs: 0, restRatio: 1,
      async run(inputs) {
        starts.push(performance.now());
        await sleep(40);
        return inputs;
      },
    });
    await batcher.submit(1);
    // Resting now: the wait is what is left of the rest, not a whole item.
    expect(batcher.backlogMs).toBeGreaterThan(20);
    expect(batcher.backlogMs).toBeLessThanOrEqual(60);
    await batcher.submit(2);
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(75); // 40 ms run + 40 ms rest
    await batcher.close();
  });

  it('validates its options', () => {
    expect(() => new MicroBatcher({ maxBatch: 0, windowMs: 1, run: async (x: number[]) => x })).toThrow(RangeError);
    expect(() => new MicroBatcher({ maxBatch: 1, windowMs: -1, run: async (x: number[]) => x })).toThrow(RangeError);
  });

  it('waits past the window for items still on their way, up to maxWaitMs', async () => {
    vi.useFakeTimers();
    try {
      let incoming = 2;
      const batches: number[][] = [];
      const batcher = new MicroBatcher<number, number>({
        maxBatch: 32, windowMs: 2, maxWaitMs: 50, incoming: () => incoming,
        run: async (xs) => { batches.push([...xs]); return xs; },
      });
      const a = batcher.submit(1);
      await vi.advanceTimersByTimeAsync(10);
      expect(batches).toEqual([]); // two more are being decoded: keep waiting
      incoming = 1;
      const b = batcher.submit(2);
      incoming = 0;
      const c = batcher.submit(3);
      await vi.advanceTimersByTimeAsync(2);
      expect(batches).toEqual([[1, 2, 3]]);
      await expect(Promise.all([a, b, c])).resolves.toEqual([1, 2, 3]);

      incoming = 5; // announced but never arriving: the batch goes at maxWaitMs
      const d = batcher.submit(4);
      await vi.advanceTimersByTimeAsync(49);
      expect(batches).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(2);
      expect(batches[1]).toEqual([4]);
      await d;
    } finally {
      vi.useRealTimers();
    }
  });

  it('runs a lone item at once, without a window, when nothing else is on its way', async () => {
    vi.useFakeTimers();
    try {
      const batches: number[][] = [];
      let incoming = 0;
      const batcher = new MicroBatcher<number, number>({
        maxBatch: 32, windowMs: 2, maxWaitMs: 50, incoming: () => incoming,
        run: async (xs) => { batches.push([...xs]); return xs; },
      });
      const a = batcher.submit(1);
      expect(batches).toEqual([[1]]); // no timer: a request alone on the server waits for nobody
      await a;
      // With a request on its way, the window applies again.
      incoming = 1;
      const b = batcher.submit(2);
      expect(batches).toHaveLength(1);
      incoming = 0;
      await vi.advanceTimersByTimeAsync(2);
      expect(batches[1]).toEqual([2]);
      await b;
    } finally {
      vi.useRealTimers();
    }
  });
});
