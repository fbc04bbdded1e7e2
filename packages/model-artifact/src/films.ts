import { z } from 'zod';
import { ModelDirError } from './errors.js';

export const FILMS_JSON = 'films.json';

/**
 * The films a model was trained on and the ones it was validated on, with its predictions for the
 * latter: what fusion is fitted on (never the predictions it is scored on) and what `evaluate`
 * checks for overlap with the films it scores.
 */
export interface FilmsRecord {
  /** 'validation': one held-out fold; 'out-of-fold': every film predicted by a model that did not train on it. */
  scheme: 'validation' | 'out-of-fold';
  train: string[];
  heldOut: string[];
  /** heldOut.length × genres, row-major. */
  heldOutProbabilities: Float32Array;
}
export type FilmsRecordInput = FilmsRecord;

const FilmsJsonSchema = z.object({
  scheme: z.enum(['validation', 'out-of-fold']),
  train: z.array(z.string()),
  heldOut: z.array(z.string()),
  /** base64 of little-endian float32. */
  heldOutProbabilities: z.string(),
});

export function encodeFilmsRecord(record: FilmsRecordInput, numGenres: number): string {
  if (record.heldOutProbabilities.length !== record.heldOut.length * numGenres) {
    throw new RangeError(`films record: ${record.heldOutProbabilities.length} probabilities for ${record.heldOut.length} held-out films × ${numGenres} genres`);
  }
  const p = record.heldOutProbabilities;
  return `${JSON.stringify({
    scheme: record.scheme, train: record.train, heldOut: record.heldOut,
    heldOutProbabilities: Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('base64'),
  })}\n`;
}

export function parseFilmsRecord(text: string, numGenres: number, where: string): FilmsRecord {
  let parsed;
  try {
    parsed = FilmsJsonSchema.parse(JSON.parse(text));
  } catch (error) {
    throw new ModelDirError(`${where}: not a valid films record (${(error as Error).message.split('\n')[0]})`);
  }
  const raw = Buffer.from(parsed.heldOutProbabilities, 'base64');
  const probabilities = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  if (probabilities.length !== parsed.heldOut.length * numGenres) {
    throw new ModelDirError(`${where}: ${probabilities.length} probabilities for ${parsed.heldOut.length} held-out films × ${numGenres} genres`);
  }
  return { scheme: parsed.scheme, train: parsed.train, heldOut: parsed.heldOut, heldOutProbabilities: probabilities };
}
