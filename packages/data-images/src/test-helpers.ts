import { resolveDatasetDir } from '@filmgenre/core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The real dataset's directory, or undefined when it is not available on this machine. */
export function datasetDirOrUndefined(): string | undefined {
  try {
    return resolveDatasetDir();
  } catch {
    return undefined;
  }
}

/** A fresh temp directory and a function removing it. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
