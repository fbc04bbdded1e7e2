import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/** Removes what a failed write may have left; that failing too must not hide the error being reported. */
function discard(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch {
    // never created (e.g. its parent is a file)
  }
}

/** A system error (disk full, read-only, no permission) with the path it concerns: Node's own message for a failed write names none. */
function naming(path: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  return code ? new Error(`${path}: could not be written (${(error as Error).message})`, { cause: error }) : error;
}

/** Writes a file so that readers see either the old content or the new one, never a half-written file. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (error) {
    discard(tmp);
    throw naming(path, error);
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
    discard(tmpDir);
    throw naming(dir, error);
  }
  const hadOld = existsSync(dir);
  if (hadOld) renameSync(dir, oldDir);
  renameSync(tmpDir, dir);
  if (hadOld) rmSync(oldDir, { recursive: true, force: true });
}

const PROBE_BYTES = 1 << 20;

/**
 * Refuses, before any work, a directory a long run could not write its results to: read-only, not
 * permitted or full. A file of 1 MiB is written and deleted in it (or in its nearest existing
 * ancestor, when it is still to be created): access() knows nothing of read-only mounts or full
 * disks, and root passes it everywhere. `what` names the option, e.g. '--out'.
 */
export function assertWritableDir(dir: string, what: string): void {
  let at = resolve(dir);
  while (!existsSync(at)) at = dirname(at);
  const probe = join(at, `.write-probe.${process.pid}.${Date.now()}`);
  try {
    writeFileSync(probe, new Uint8Array(PROBE_BYTES));
  } catch (error) {
    discard(probe);
    throw new Error(`${what} ${resolve(dir)}: cannot write ${at === resolve(dir) ? 'there' : `in ${at}`} (${(error as Error).message}); free space, fix its permissions or choose another directory`);
  }
  rmSync(probe, { force: true });
}
