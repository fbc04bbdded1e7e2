import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';

const require = createRequire(import.meta.url);

/** Exact versions of the packages that produced an artifact, so a model can be traced to its code. */
export function packageVersions(names: readonly string[]): Record<string, string> {
  const versions: Record<string, string> = { node: process.version, '@tensorflow/tfjs': tf.version.tfjs };
  for (const name of names) {
    try {
      versions[name] = (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      versions[name] = 'unknown';
    }
  }
  return versions;
}

/** The commit that produced an artifact (suffixed -dirty with uncommitted changes), or null outside a git checkout. */
export function gitCommit(cwd = process.cwd()): string | null {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return null;
  }
}

export interface Provenance {
  versions: Record<string, string>;
  gitCommit: string | null;
  backend: string;
  createdAt: string;
}

/** Versions of the given packages (plus node and tfjs), the git commit, the backend and the time. */
export function provenance(packages: readonly string[], backend: string): Provenance {
  return { versions: packageVersions(packages), gitCommit: gitCommit(), backend, createdAt: new Date().toISOString() };
}
