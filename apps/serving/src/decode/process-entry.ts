// A poster decoder's own process (see decode-process.ts): it lowers its CPU priority (to the niceness
// given as its argument, if above 0) before any thread that decodes exists, then decodes one poster at
// a time for its parent over IPC.
import { decodePoster, PosterError } from '@filmgenre/data-images';
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { DECODER_NICENESS, type DecodeCall, type DecodeReply } from './protocol.js';

/**
 * Lowers the CPU priority of every thread of this process. On Linux niceness is per thread and a new
 * thread inherits its creator's: the libuv pool and libvips threads that exist already (loading sharp
 * starts some) are set one by one, and this runs again before each decode for any started since.
 * Raising niceness needs no privilege; where it fails, decoding still works at normal priority.
 */
const niceness = Number(process.argv[2] ?? DECODER_NICENESS);

function lowerPriority(): void {
  if (!(niceness > 0)) return;
  let threads: number[] = [0];
  try {
    threads = readdirSync('/proc/self/task').map(Number);
  } catch {
    // no /proc: the calling thread only
  }
  for (const tid of threads) {
    try {
      setPriority(tid, niceness);
    } catch {
      // gone, or not permitted
    }
  }
}
lowerPriority();

const send = (reply: DecodeReply) => process.send!(reply);

process.on('message', (call: DecodeCall) => {
  void (async () => {
    try {
      lowerPriority();
      const pixels = await decodePoster(Buffer.from(call.bytes.buffer, call.bytes.byteOffset, call.bytes.byteLength), { width: call.width, height: call.height, limitInputPixels: call.limitInputPixels });
      send({ id: call.id, ok: true, pixels });
    } catch (error) {
      send(error instanceof PosterError
        ? { id: call.id, ok: false, kind: error.kind, reason: error.reason }
        : { id: call.id, ok: false, kind: 'internal', reason: (error as Error).message });
    }
  })();
});
// The parent is gone (crashed, killed): nothing left to decode for.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
