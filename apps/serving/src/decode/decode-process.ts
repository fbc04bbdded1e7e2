// Posters are decoded in child processes, killable, so that a decode past its deadline stops at once
// instead of running on in libvips (which cannot be interrupted from outside; sharp's own timeout
// stopped a 1 × 25,000,000 PNG only after 7–9 s). The one for slow posters runs at a lower CPU
// priority (nice 10), so that it takes CPU from the server only when nothing else needs it; those of
// the pool for the usual posters (decode-pool.ts) at the server's own. A poster that crashes a decoder
// (memory) crashes only that process.
import { PosterError, type DecodePosterOptions } from '@filmgenre/data-images';
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { DECODER_NICENESS, type DecodeCall, type DecodeReply } from './protocol.js';

/** The built app ships the entry as poster-decoder.js beside main.js (see build.mjs); from source it runs through tsx. */
function spawnDecoder(niceness: number): ChildProcess {
  const options = { serialization: 'advanced' as const, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] as ('ignore' | 'inherit' | 'ipc')[] };
  const args = [String(niceness)];
  if (!import.meta.url.endsWith('.ts')) return fork(fileURLToPath(new URL('./poster-decoder.js', import.meta.url)), args, { ...options, execArgv: [] });
  const tsxPackage = createRequire(import.meta.url).resolve('tsx/package.json');
  const loader = (JSON.parse(readFileSync(tsxPackage, 'utf8')) as { exports: Record<string, string> }).exports['.']!;
  return fork(fileURLToPath(new URL('./process-entry.ts', import.meta.url)), args, { ...options, execArgv: ['--import', pathToFileURL(join(dirname(tsxPackage), loader)).href] });
}

export interface DecodeProcessOptions {
  /** The decoder's CPU niceness (0: the server's own priority). */
  niceness?: number;
}

export class DecodeProcess {
  private child: ChildProcess | undefined;
  private started: Promise<ChildProcess> | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (pixels: Uint8Array) => void; reject: (error: Error) => void }>();
  private closed = false;
  private readonly niceness: number;

  constructor(options: DecodeProcessOptions = {}) {
    this.niceness = options.niceness ?? DECODER_NICENESS;
  }

  /** The decoder process's id while one runs (tests check its priority). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Decodes in the child; same result and errors (PosterError) as decodePoster. When `signal` aborts
   * while the process is still starting, the call is dropped and the start goes on (killing it would
   * only start another); once the poster is sent, the process is killed, which stops the decode.
   */
  async decode(bytes: Buffer, options: Required<Pick<DecodePosterOptions, 'width' | 'height' | 'limitInputPixels'>>, signal?: AbortSignal): Promise<Uint8Array> {
    signal?.throwIfAborted();
    const child = await untilAborted(this.start(), signal);
    const id = this.nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      const stop = () => {
        const reason: unknown = signal!.reason;
        this.kill(reason instanceof Error ? reason.message : String(reason));
      };
      signal?.addEventListener('abort', stop, { once: true });
      const settle = () => signal?.removeEventListener('abort', stop);
      this.pending.set(id, {
        resolve: (pixels) => {
          settle();
          resolve(pixels);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      const call: DecodeCall = { id, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), width: options.width, height: options.height, limitInputPixels: options.limitInputPixels };
      child.send(call);
    });
  }

  /** Stops whatever is being decoded, now: the process is killed, the next decode starts a new one. */
  kill(reason: string): void {
    const child = this.child;
    this.child = undefined;
    this.started = undefined;
    this.failAll(new Error(reason));
    child?.kill('SIGKILL');
  }

  close(): void {
    this.closed = true;
    this.kill('the poster decoder is closed');
  }

  /**
   * Starts the process now if none runs, so that the next decode does not wait for Node and sharp to
   * load (100–300 ms for the built app, more through tsx).
   */
  warm(): void {
    if (this.closed) return;
    this.start().catch(() => {}); // a failed start is reported to the decode that needs it
  }

  private start(): Promise<ChildProcess> {
    if (this.closed) return Promise.reject(new Error('the poster decoder is closed'));
    this.started ??= new Promise<ChildProcess>((resolve, reject) => {
      const child = spawnDecoder(this.niceness);
      this.child = child;
      // Lower its priority from here too, at once: Node's start-up in the child (threads, loading
      // sharp) then already runs below the server; the child lowers every thread it has when it starts.
      try {
        if (child.pid !== undefined && this.niceness > 0) setPriority(child.pid, this.niceness);
      } catch {
        // not permitted: the child still lowers itself
      }
      child.on('message', (reply: DecodeReply) => {
        if ('type' in reply) return resolve(child);
        const call = this.pending.get(reply.id);
        if (!call) return;
        this.pending.delete(reply.id);
        if (reply.ok) call.resolve(reply.pixels);
        else call.reject(reply.kind === 'internal' ? new Error(reply.reason) : new PosterError('<upload>', reply.kind, reply.reason));
      });
      child.on('error', (error) => {
        reject(error);
        this.lost(child, error);
      });
      child.on('exit', (code, signal) => {
        const error = new PosterError('<upload>', 'corrupt', `the decoder process ended (${signal ?? `exit code ${code}`}) while decoding it`);
        reject(error);
        this.lost(child, error);
      });
    });
    return this.started;
  }

  /** The child died by itself (a crash, out of memory): fail its calls; the next decode starts another. */
  private lost(child: ChildProcess, error: Error): void {
    if (this.child !== child) return; // already replaced after a kill
    this.child = undefined;
    this.started = undefined;
    this.failAll(error);
  }

  private failAll(error: Error): void {
    for (const call of this.pending.values()) call.reject(error);
    this.pending.clear();
  }
}

/** `work`, or a rejection with the signal's reason as soon as it aborts (`work` itself goes on). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(error);
      },
    );
  });
}
