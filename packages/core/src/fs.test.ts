import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { replaceDirAtomic, writeFileAtomic } from './fs.js';

const work = mkdtempSync(join(tmpdir(), 'core-fs-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('replaceDirAtomic', () => {
  it('keeps the previous complete directory when filling the new one fails', async () => {
    const dir = join(work, 'atomic');
    await replaceDirAtomic(dir, (tmp) => writeFileSync(join(tmp, 'a.txt'), 'first'));
    await expect(replaceDirAtomic(dir, (tmp) => {
      writeFileSync(join(tmp, 'a.txt'), 'half');
      throw new Error('crash while writing');
    })).rejects.toThrow('crash while writing');
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('first');
    expect(readdirSync(work).filter((n) => n.startsWith('.atomic'))).toEqual([]);
    await replaceDirAtomic(dir, (tmp) => writeFileSync(join(tmp, 'b.txt'), 'second'));
    expect(existsSync(join(dir, 'a.txt'))).toBe(false);
    expect(readFileSync(join(dir, 'b.txt'), 'utf8')).toBe('second');
  });
});

describe('writeFileAtomic', () => {
  it('creates missing parent directories and leaves no temp file behind', () => {
    const path = join(work, 'nested', 'deeper', 'file.json');
    writeFileAtomic(path, '{"a":1}');
    writeFileAtomic(path, '{"a":2}');
    expect(readFileSync(path, 'utf8')).toBe('{"a":2}');
    expect(readdirSync(join(work, 'nested', 'deeper'))).toEqual(['file.json']);
  });
});
