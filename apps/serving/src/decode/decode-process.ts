// Large posters are decoded in a child process: at a lower CPU priority (nice 10), so that a slow
// decode takes CPU from the server only when nothing else needs it, and killable, so that a decode
// past its deadline stops at once instead of running on in libvips (which cannot be interrupted from
// outside; sharp's own timeout stopped a 1 × 25,000,000 PNG only after 7–9 s). A poster that crashes
// the decoder (memory) crashes only that process.
import { PosterError, type DecodePosterOptions } from '@filmgenre/data-images';
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { DECODER_NICENESS, type DecodeCall, type DecodeReply } from './protocol.js';

/** The built app ships the entry as poster-decoder.js beside main.js (see build.mjs); from source it runs through tsx. */
function spawnDecoder(): ChildProcess {
  const options = { serialization: 'advanced' as const, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] as ('ignore' | 'inherit' | 'ipc')[] };
  if (!import.meta.url.endsWith('.ts')) return fork(fileURLToPath(new URL('./poster-decoder.js', import.meta.url)), [], { ...options, execArgv: [] });
  const tsxPackage = createRequire(import.meta.url).resolve('tsx/package.json');
  const loader = (JSON.parse(readFileSync(tsxPackage, 'utf8')) as { exports: Record<string, string> }).exports['.']!;
  return fork(fileURLToPath(new URL('./process-entry.ts', import.meta.url)), [], { ...options, execArgv: ['--import', pathToFileURL(join(dirname(tsxPackage), loader)).href] });
}

export class DecodeProcess {
  private child: ChildProcess | undefined;
  private started: Promise<ChildProcess> | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (pixels: Uint8Array) => void; reject: (error: Error) => void }>();
  private closed = false;

  /** The decoder process's id while one runs (tests check its priority). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Decodes in the child; same result and errors (PosterError) as decodePoster. */
  async decode(bytes: Buffer, options: Required<Pick<DecodePosterOptions, 'width' | 'height' | 'limitInputPixels'>>): Promise<Uint8Array> {
    const child = await this.start();
    const id = this.nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
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

  private start(): Promise<ChildProcess> {
    if (this.closed) return Promise.reject(new Error('the poster decoder is closed'));
    this.started ??= new Promise<ChildProcess>((resolve, reject) => {
      const child = spawnDecoder();
      this.child = child;
      // Lower its priority from here too, at once: Node's start-up in the child (threads, loading
      // sharp) then already runs below the server; the child lowers every thread it has when it starts.
      try {
        if (child.pid !== undefined) setPriority(child.pid, DECODER_NICENESS);
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
