import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { VectorCache, vectorCacheKey } from './vector-cache.js';

let dir: string;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});
const fresh = () => (dir = mkdtempSync(join(tmpdir(), 'vector-cache-')));

describe('VectorCache', () => {
  it('keys by identity and input: a different model or input is a different key', () => {
    expect(vectorCacheKey('model-a', 'text')).toBe(vectorCacheKey('model-a', 'text'));
    expect(vectorCacheKey('model-a', 'text')).not.toBe(vectorCacheKey('model-b', 'text'));
    expect(vectorCacheKey('model-a', 'text')).not.toBe(vectorCacheKey('model-a', 'text '));
    expect(vectorCacheKey('m', new Uint8Array([1, 2]))).not.toBe(vectorCacheKey('m', new Uint8Array([1, 3])));
  });

  it('persists rows across instances and reads them back exactly', () => {
    fresh();
    const a = new VectorCache(dir, { identity: 'enc-1', dim: 3 });
    a.set(a.key('x'), new Float32Array([1, 2, 3]));
    a.set(a.key('y'), new Float32Array([0.5, -1, 1e-7]));
    a.flush();
    const b = new VectorCache(dir, { identity: 'enc-1', dim: 3 });
    expect(b.size).toBe(2);
    expect(Array.from(b.get(b.key('y'))!)).toEqual(Array.from(new Float32Array([0.5, -1, 1e-7])));
    expect(b.get(b.key('z'))).toBeUndefined();
  });

  it('never serves another identity\'s rows, and ignores a damaged pack', () => {
    fresh();
    const a = new VectorCache(dir, { identity: 'enc-1', dim: 2 });
    a.set(a.key('x'), new Float32Array([1, 2]));
    a.flush();
    expect(new VectorCache(dir, { identity: 'enc-2', dim: 2 }).size).toBe(0);
    writeFileSync(a.file, Buffer.from('FGVEC001garbage'));
    expect(new VectorCache(dir, { identity: 'enc-1', dim: 2 }).size).toBe(0);
  });

  it('copies what it stores and checks the dimension', () => {
    fresh();
    const c = new VectorCache(dir, { identity: 'e', dim: 2 });
    const v = new Float32Array([1, 2]);
    c.set('k', v);
    v[0] = 9;
    expect(c.get('k')![0]).toBe(1);
    expect(() => c.set('k', new Float32Array(3))).toThrow(/2-d/);
  });

  it('writes nothing when nothing changed, and leaves no temp file behind', () => {
    fresh();
    const c = new VectorCache(dir, { identity: 'e', dim: 1 });
    c.flush();
    expect(readdirSync(dir)).toEqual([]);
    c.set('k', new Float32Array([1]));
    c.flush();
    expect(readdirSync(dir)).toHaveLength(1);
  });
});
