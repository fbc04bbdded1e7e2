import type { PosterErrorKind } from '@filmgenre/data-images';

/** The decoder process's niceness: below the server's threads, which keep priority for normal requests. */
export const DECODER_NICENESS = 10;

/** Main process → decode process: one poster to decode. */
export interface DecodeCall {
  id: number;
  bytes: Uint8Array;
  width: number;
  height: number;
  limitInputPixels: number;
}

/** Decode process → main process. */
export type DecodeReply =
  | { type: 'ready' }
  | { id: number; ok: true; pixels: Uint8Array }
  | { id: number; ok: false; kind: PosterErrorKind | 'internal'; reason: string };
