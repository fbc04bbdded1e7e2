// The usual posters' decoders: a few child processes (one per core by default) at the server's own
// CPU priority, each decoding one poster at a time. A decode in the server process runs on a libuv
// thread that nothing can stop: a poster slower than its header promised (issue 21's scan bomb: 654 KB,
// 35 s) held that thread, and four held them all. Here a decode past its deadline is stopped by
// killing its process, which is replaced at once, so no client can hold a decoder beyond a deadline.
import type { DecodePosterOptions } from '@filmgenre/data-images';
import { DecodeProcess } from './decode-process.js';

type DecodeOptions = Required<Pick<DecodePosterOptions, 'width' | 'height' | 'limitInputPixels'>>;

/** What the pool needs of a decoder process (tests give it stand-ins). */
export interface PoolMember {
  /** Stops the decode when `signal` aborts (killing the process if the poster was sent to it). */
  decode(bytes: Buffer, options: DecodeOptions, signal?: AbortSignal): Promise<Uint8Array>;
  warm(): void;
  close(): void;
}

export class DecodePool {
  private readonly members: PoolMember[];
  private readonly free: PoolMember[];
  private readonly waiting: { take: (member: PoolMember) => void; fail: (error: Error) => void }[] = [];
  private closed = false;

  constructor(size: number, create: () => PoolMember = () => new DecodeProcess({ niceness: 0 })) {
    if (!(size >= 1)) throw new RangeError(`a decode pool needs at least one process, got ${size}`);
    this.members = Array.from({ length: size }, create);
    this.free = [...this.members];
    // Started now, so that the first posters do not wait for Node and sharp to load.
    for (const member of this.members) member.warm();
  }

  get size(): number {
    return this.members.length;
  }

  /** Decodes waiting for a free process. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Decodes in the first free process (waiting for one if all are busy). When `signal` aborts, a
   * decode still waiting leaves the queue (rejecting with the signal's reason), and one under way is
   * stopped by its process (see DecodeProcess.decode), which is then replaced.
   */
  async decode(bytes: Buffer, options: DecodeOptions, signal?: AbortSignal): Promise<Uint8Array> {
    if (this.closed) throw new Error('the poster decoders are closed');
    signal?.throwIfAborted();
    const member = await this.take(signal);
    try {
      return await member.decode(bytes, options, signal);
    } finally {
      if (signal?.aborted) member.warm(); // a killed process is replaced now, so the next poster finds one started
      this.give(member);
    }
  }

  close(): void {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter.fail(new Error('the poster decoders are closed'));
    for (const member of this.members) member.close();
  }

  private take(signal: AbortSignal | undefined): Promise<PoolMember> {
    const member = this.free.pop();
    if (member) return Promise.resolve(member);
    return new Promise<PoolMember>((resolve, reject) => {
      const waiter = {
        take: (m: PoolMember) => {
          signal?.removeEventListener('abort', leave);
          resolve(m);
        },
        fail: (error: Error) => {
          signal?.removeEventListener('abort', leave);
          reject(error);
        },
      };
      const leave = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', leave, { once: true });
      this.waiting.push(waiter);
    });
  }

  private give(member: PoolMember): void {
    const next = this.waiting.shift();
    if (next) next.take(member);
    else this.free.push(member);
  }
}
