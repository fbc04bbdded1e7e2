import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './fs.js';

/**
 * A content-addressed on-disk cache of float32 vectors (sentence embeddings, poster features).
 *
 * Every entry is keyed by the sha256 of the producer's identity (a hash of the model's files and of
 * every setting that changes its output) and of the exact input (the overview's text, the poster's
 * bytes), so a changed model, setting or input is a different key and is never served stale. Entries
 * of one identity live in one pack file, `<dir>/<identity hash>.f32pack`: a small JSON header (dim,
 * identity, keys in order) and the rows. A pack is rewritten whole, atomically, by `flush`; two
 * processes flushing the same pack at once can lose each other's new rows (they are recomputed next
 * time), never corrupt or mix them. A damaged or foreign pack is ignored and replaced.
 */
const MAGIC = Buffer.from('FGVEC001', 'ascii');

export interface VectorCacheOptions {
  /** What produces the vectors, e.g. model files' hash + settings; part of every key. */
  identity: string;
  dim: number;
}

interface PackHeader {
  identity: string;
  dim: number;
  keys: string[];
}

/** sha256 (hex) of the identity and the input's bytes; the cache's key for one vector. */
export function vectorCacheKey(identity: string, input: string | Uint8Array): string {
  return createHash('sha256').update(identity).update('\0').update(input).digest('hex');
}

export class VectorCache {
  readonly identity: string;
  readonly dim: number;
  readonly file: string;
  private rows = new Map<string, Float32Array>();
  private dirty = false;

  constructor(dir: string, options: VectorCacheOptions) {
    if (!(Number.isInteger(options.dim) && options.dim > 0)) throw new RangeError(`dim must be a positive integer, got ${options.dim}`);
    this.identity = options.identity;
    this.dim = options.dim;
    this.file = join(dir, `${createHash('sha256').update(options.identity).digest('hex').slice(0, 24)}.f32pack`);
    this.load();
  }

  private load(): void {
    let buf: Buffer;
    try {
      buf = readFileSync(this.file);
    } catch {
      return;
    }
    try {
      if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) return;
      const headerLength = buf.readUInt32LE(MAGIC.length);
      const start = MAGIC.length + 4 + headerLength;
      const header = JSON.parse(buf.subarray(MAGIC.length + 4, start).toString('utf8')) as PackHeader;
      if (header.identity !== this.identity || header.dim !== this.dim) return;
      if (buf.length !== start + header.keys.length * this.dim * 4) return;
      // Copy into an aligned buffer once, then hand out views.
      const data = new Float32Array(header.keys.length * this.dim);
      new Uint8Array(data.buffer).set(buf.subarray(start));
      header.keys.forEach((key, i) => this.rows.set(key, data.subarray(i * this.dim, (i + 1) * this.dim)));
    } catch {
      this.rows.clear();
    }
  }

  get size(): number {
    return this.rows.size;
  }

  key(input: string | Uint8Array): string {
    return vectorCacheKey(this.identity, input);
  }

  get(key: string): Float32Array | undefined {
    return this.rows.get(key);
  }

  set(key: string, vector: Float32Array): void {
    if (vector.length !== this.dim) throw new RangeError(`vector has ${vector.length} values, the cache holds ${this.dim}-d vectors`);
    this.rows.set(key, Float32Array.from(vector));
    this.dirty = true;
  }

  /** Writes the pack if anything was added since it was read or last flushed. */
  flush(): void {
    if (!this.dirty) return;
    const keys = [...this.rows.keys()];
    const header = Buffer.from(JSON.stringify({ identity: this.identity, dim: this.dim, keys } satisfies PackHeader), 'utf8');
    const start = MAGIC.length + 4 + header.length;
    const out = Buffer.allocUnsafe(start + keys.length * this.dim * 4);
    MAGIC.copy(out, 0);
    out.writeUInt32LE(header.length, MAGIC.length);
    header.copy(out, MAGIC.length + 4);
    keys.forEach((key, i) => {
      const row = this.rows.get(key)!;
      Buffer.from(row.buffer, row.byteOffset, row.byteLength).copy(out, start + i * this.dim * 4);
    });
    writeFileAtomic(this.file, out);
    this.dirty = false;
  }
}
