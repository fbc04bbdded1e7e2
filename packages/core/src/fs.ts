import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Writes a file so that readers see either the old content or the new one, never a half-written file. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

/**
 * Fills a fresh sibling directory with `fill`, then swaps it in place of `dir`. A crash at any point
 * leaves either the previous complete directory or the new complete one (plus a stray temp dir).
 */
export async function replaceDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void> | void): Promise<void> {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const stamp = `${process.pid}.${Date.now()}`;
  const tmpDir = join(parent, `.${basename(dir)}.${stamp}.tmp`);
  const oldDir = join(parent, `.${basename(dir)}.${stamp}.old`);
  mkdirSync(tmpDir, { recursive: true });
  try {
    await fill(tmpDir);
  } catch (error) {
    rmSync(tmpDir, { recursive: true, force: true });
    throw error;
  }
  const hadOld = existsSync(dir);
  if (hadOld) renameSync(dir, oldDir);
  renameSync(tmpDir, dir);
  if (hadOld) rmSync(oldDir, { recursive: true, force: true });
}
