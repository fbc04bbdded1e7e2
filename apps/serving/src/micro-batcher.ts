/**
 * Queues single items and runs them through one batched call, so that N concurrent requests cost one
 * model call instead of N. A batch is flushed when it reaches `maxBatch` items or when the first
 * queued item has waited `windowMs`. At most `concurrency` batches run at once (one per model
 * worker): while they run, new items gather, which makes batches grow with load on their own.
 */
export interface MicroBatcherOptions<I, O> {
  /** Runs one batch; must return exactly one output per input, in input order. */
  run: (inputs: I[]) => Promise<O[]>;
  maxBatch: number;
  windowMs: number;
  /** Batches that may run at the same time (default 1): the number of workers behind `run`. */
  concurrency?: number;
  /** Called after every batch (for metrics); an error in it is ignored. */
  onBatch?: (info: BatchInfo) => void;
  /**
   * How many more items are on their way (e.g. requests still being parsed and decoded). When none
   * are, an item that finds the lane free runs at once, without a window. When the window ends while
   * some are, the batch waits for them, up to `maxWaitMs` after its first item:
   * under load, closed-loop clients arrive staggered, and cutting a batch early makes models whose
   * cost hardly depends on the batch size (an LSTM) run several times for the same requests.
   */
  incoming?: () => number;
  /** Cap on that extra wait, from the first queued item (default: the window, i.e. no extension). */
  maxWaitMs?: number;
  /**
   * After each batch, the lane rests this many times the batch's run time before the next one starts
   * (default 0): a lane of costly work then takes at most 1 / (1 + restRatio) of a core, and the
   * rest stays free for the others. Counted in `backlogMs`.
   */
  restRatio?: number;
}

export interface BatchInfo {
  size: number;
  runMs: number;
  ok: boolean;
}

/** An output with how it was produced, for per-request timings. */
export interface BatchedResult<O> {
  value: O;
  batchSize: number;
  /** Time from submit() until its batch started. */
  waitMs: number;
  /** Time of the batch's run() call (shared by every item of the batch). */
  runMs: number;
}

interface Pending<I, O> {
  input: I;
  queuedAt: number;
  resolve: (result: BatchedResult<O>) => void;
  reject: (error: unknown) => void;
}

export class BatcherClosedError extends Error {
  override name = 'BatcherClosedError';
}

export class MicroBatcher<I, O> {
  private readonly options: MicroBatcherOptions<I, O>;
  private queue: Pending<I, O>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly running = new Set<Promise<void>>();
  private readonly concurrency: number;
  private closed = false;
  /** Items in the batches running now. */
  private runningItems = 0;
  /** While the lane rests after a batch (restRatio): when it may start the next one (performance.now()). */
  private restingUntil = 0;
  /** Run time per item of the recent batches (ms, exponentially weighted); unknown before the first. */
  private msPerItem: number | undefined;

  constructor(options: MicroBatcherOptions<I, O>) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) throw new RangeError(`maxBatch must be an integer ≥ 1, got ${options.maxBatch}`);
    if (!(options.windowMs >= 0)) throw new RangeError(`windowMs must be ≥ 0, got ${options.windowMs}`);
    this.concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new RangeError(`concurrency must be an integer ≥ 1, got ${options.concurrency}`);
    this.options = options;
  }

  /** Items waiting for a batch (not counting the batch that is running). */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * How long an item submitted now would wait before its batch starts, estimated from the items
   * ahead of it (queued and running) and the measured run time per item: what admission control
   * compares with its deadline. 0 before any batch has run.
   */
  get backlogMs(): number {
    if (this.msPerItem === undefined) return 0;
    const resting = Math.max(0, this.restingUntil - performance.now());
    return resting + ((this.queue.length + this.runningItems) * this.msPerItem) / this.concurrency;
  }

  submit(input: I): Promise<O> {
    return this.submitWithInfo(input).then((r) => r.value);
  }

  submitWithInfo(input: I): Promise<BatchedResult<O>> {
    if (this.closed) return Promise.reject(new BatcherClosedError('the batcher is closed'));
    return new Promise<BatchedResult<O>>((resolve, reject) => {
      this.queue.push({ input, queuedAt: performance.now(), resolve, reject });
      this.schedule();
    });
  }

  /** Refuses new items and resolves once every queued item has been answered. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running.size > 0 || this.queue.length > 0) {
      this.flush();
      await Promise.all([...this.running]);
    }
  }

  private schedule(): void {
    if (this.running.size >= this.concurrency) return; // the end of a running batch picks the queue up
    if (this.queue.length >= this.options.maxBatch) {
      this.flush();
    } else if (!this.timer) {
      // Nothing else on its way: a window would only add its length to a lone request's latency.
      if (this.options.incoming?.() === 0) this.flush();
      else this.timer = setTimeout(() => this.windowEnded(), this.options.windowMs);
    }
  }

  private windowEnded(): void {
    this.timer = undefined;
    const first = this.queue[0];
    const maxWaitMs = Math.max(this.options.maxWaitMs ?? 0, this.options.windowMs);
    if (first && !this.closed && (this.options.incoming?.() ?? 0) > 0) {
      const left = maxWaitMs - (performance.now() - first.queuedAt);
      if (left > 0) {
        this.timer = setTimeout(() => this.windowEnded(), Math.min(this.options.windowMs || 1, left));
        return;
      }
    }
    this.flush();
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.running.size >= this.concurrency || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.options.maxBatch);
    this.runningItems += batch.length;
    const started = performance.now();
    const rest = this.options.restRatio ?? 0;
    const run: Promise<void> = this.runBatch(batch)
      .then(async () => {
        this.runningItems -= batch.length;
        if (rest <= 0 || this.closed) return;
        const restMs = rest * (performance.now() - started);
        this.restingUntil = performance.now() + restMs;
        await new Promise<void>((resolve) => setTimeout(resolve, restMs));
      })
      .finally(() => {
        this.running.delete(run);
        this.next();
      });
    this.running.add(run);
    // Another worker may be free for what is left.
    if (this.queue.length > 0) this.next();
  }

  /**
   * Items that arrived during a run have already waited at least as long as a window would make them:
   * run them now if there are enough for a full batch, else give stragglers one window.
   */
  private next(): void {
    if (this.queue.length === 0) return;
    if (this.queue.length >= this.options.maxBatch || this.closed) this.flush();
    else this.schedule();
  }

  private async runBatch(batch: Pending<I, O>[]): Promise<void> {
    const started = performance.now();
    try {
      const outputs = await this.options.run(batch.map((p) => p.input));
      if (!Array.isArray(outputs) || outputs.length !== batch.length) {
        throw new Error(`batch run returned ${Array.isArray(outputs) ? outputs.length : typeof outputs} outputs for ${batch.length} inputs`);
      }
      const runMs = performance.now() - started;
      // A weight of 1/4: a few batches move it, one odd batch does not.
      const costMs = (runMs * (1 + (this.options.restRatio ?? 0))) / batch.length;
      this.msPerItem = this.msPerItem === undefined ? costMs : 0.75 * this.msPerItem + 0.25 * costMs;
      this.report({ size: batch.length, runMs, ok: true });
      batch.forEach((p, i) => p.resolve({ value: outputs[i]!, batchSize: batch.length, waitMs: started - p.queuedAt, runMs }));
    } catch (error) {
      this.report({ size: batch.length, runMs: performance.now() - started, ok: false });
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // One bad input must not fail the others that happened to share its batch: retry each alone,
      // so only the item(s) that fail on their own get the error.
      for (const p of batch) await this.runBatch([p]);
    }
  }

  private report(info: BatchInfo): void {
    try {
      this.options.onBatch?.(info);
    } catch {
      // metrics must never break predictions
    }
  }
}
