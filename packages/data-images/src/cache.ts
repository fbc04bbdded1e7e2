import { findWorkspaceRoot } from '@filmgenre/core';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DECODER_VERSION } from './decode.js';

/**
 * The decode cache: one file per (poster directories, size) holding an index and every poster's
 * pixels, read in one go (2–7× faster warm than one file per poster: docs/benchmarks/poster-pipeline.md);
 * rewritten whole when posters are added. Entries are validated by (path, mtime, byte size, target
 * size, decoder version).
 */
export interface PosterKey {
  /** Absolute path of the source poster. */
  path: string;
  mtimeMs: number;
  bytes: number;
  /** Target side in pixels. */
  size: number;
}

/** `<workspace>/.cache/posters` (git-ignored). */
export function defaultCacheDir(): string {
  return join(findWorkspaceRoot(), '.cache', 'posters');
}

/** Writes via a unique temp file and rename, so a reader never sees a partial entry. */
async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  // Not Math.random: the trainer seeds it, and a cold cache must not shift a seeded run's draws.
  const tmp = join(dirname(path), `.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

export interface PosterCacheStore {
  /** Cached pixels for each key, or undefined where the entry is missing, stale or damaged. */
  get(keys: readonly PosterKey[]): Promise<(Uint8Array | undefined)[]>;
  /** Records a freshly decoded poster (written on flush). */
  add(key: PosterKey, pixels: Uint8Array): Promise<void>;
  flush(): Promise<void>;
}

export function openPosterCache(cacheDir: string, size: number, posterPaths: readonly string[]): PosterCacheStore {
  const dirs = [...new Set(posterPaths.map((p) => dirname(p)))].sort();
  const tag = createHash('sha1').update(dirs.join('\n')).digest('hex').slice(0, 12);
  return new PackCache(join(cacheDir, `pack-${size}-${tag}.bin`), size);
}

const PACK_MAGIC = Buffer.from('FGPPACK1', 'ascii');
type PackEntry = [path: string, mtimeMs: number, bytes: number];
interface PackIndex {
  decoder: string;
  size: number;
  entries: PackEntry[];
}

class PackCache implements PosterCacheStore {
  private loaded?: { index: Map<string, { entry: PackEntry; offset: number }>; data: Buffer };
  private readonly added = new Map<string, { entry: PackEntry; pixels: Uint8Array }>();
  constructor(private readonly file: string, private readonly size: number) {}

  private async load() {
    if (this.loaded) return this.loaded;
    const index = new Map<string, { entry: PackEntry; offset: number }>();
    let data = Buffer.alloc(0);
    try {
      const buf = await readFile(this.file);
      const jsonLength = buf.readUInt32LE(PACK_MAGIC.length);
      const start = PACK_MAGIC.length + 4 + jsonLength;
      const header = JSON.parse(buf.subarray(PACK_MAGIC.length + 4, start).toString('utf8')) as PackIndex;
      const per = this.size * this.size * 3;
      if (buf.subarray(0, PACK_MAGIC.length).equals(PACK_MAGIC) && header.decoder === DECODER_VERSION && header.size === this.size &&
        buf.length === start + header.entries.length * per) {
        data = buf;
        header.entries.forEach((entry, i) => index.set(entry[0], { entry, offset: start + i * per }));
      }
    } catch {
      // Missing or damaged pack: start empty; the next flush replaces it.
    }
    this.loaded = { index, data };
    return this.loaded;
  }

  async get(keys: readonly PosterKey[]): Promise<(Uint8Array | undefined)[]> {
    const { index, data } = await this.load();
    const per = this.size * this.size * 3;
    return keys.map((key) => {
      const hit = index.get(key.path);
      if (!hit || hit.entry[1] !== key.mtimeMs || hit.entry[2] !== key.bytes) return undefined;
      return new Uint8Array(data.buffer, data.byteOffset + hit.offset, per);
    });
  }

  async add(key: PosterKey, pixels: Uint8Array): Promise<void> {
    this.added.set(key.path, { entry: [key.path, key.mtimeMs, key.bytes], pixels });
  }

  async flush(): Promise<void> {
    if (this.added.size === 0) return;
    const { index, data } = await this.load();
    const per = this.size * this.size * 3;
    // Keep old entries not replaced now (other splits of the same directory), then the new ones.
    const kept = [...index.values()].filter((e) => !this.added.has(e.entry[0]));
    const entries: PackEntry[] = [...kept.map((e) => e.entry), ...[...this.added.values()].map((a) => a.entry)];
    const json = Buffer.from(JSON.stringify({ decoder: DECODER_VERSION, size: this.size, entries } satisfies PackIndex), 'utf8');
    const start = PACK_MAGIC.length + 4 + json.length;
    const out = Buffer.allocUnsafe(start + entries.length * per);
    PACK_MAGIC.copy(out, 0);
    out.writeUInt32LE(json.length, PACK_MAGIC.length);
    json.copy(out, PACK_MAGIC.length + 4);
    let at = start;
    for (const e of kept) {
      data.copy(out, at, e.offset, e.offset + per);
      at += per;
    }
    for (const a of this.added.values()) {
      out.set(a.pixels, at);
      at += per;
    }
    await mkdir(dirname(this.file), { recursive: true });
    await writeAtomic(this.file, out);
    this.loaded = undefined;
    this.added.clear();
  }
}
