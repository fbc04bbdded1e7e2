import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assertWritableDir, replaceDirAtomic, writeFileAtomic } from './fs.js';

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

describe('failed writes name the path', () => {
  it('replaceDirAtomic and writeFileAtomic name what they could not write (Node\'s message for a failed write names nothing)', async () => {
    const dir = join(work, 'named');
    await expect(replaceDirAtomic(dir, (tmp) => writeFileSync(join(tmp, 'missing', 'x'), '1'))).rejects.toThrow(new RegExp(`^${dir}: could not be written \\(ENOENT`));
    writeFileSync(join(work, 'a-file'), '');
    expect(() => writeFileAtomic(join(work, 'a-file', 'x.json'), '{}')).toThrow(new RegExp(`${join(work, 'a-file', 'x.json')}: could not be written \\(`));
    // Errors of the caller's own making pass through as they are.
    await expect(replaceDirAtomic(dir, () => { throw new RangeError('bad metadata'); })).rejects.toThrow(RangeError);
  });

  it('assertWritableDir writes and removes a probe, in the directory or its nearest existing ancestor, and names the option and the cause', () => {
    assertWritableDir(join(work, 'not', 'yet', 'there'), '--out');
    expect(existsSync(join(work, 'not'))).toBe(false);
    expect(readdirSync(work).filter((n) => n.startsWith('.write-probe'))).toEqual([]);
    writeFileSync(join(work, 'plain-file'), '');
    expect(() => assertWritableDir(join(work, 'plain-file', 'models'), '--out')).toThrow(new RegExp(`^--out ${join(work, 'plain-file', 'models')}: cannot write in ${join(work, 'plain-file')} \\(ENOTDIR`));
  });
});
