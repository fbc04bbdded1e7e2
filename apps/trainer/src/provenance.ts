import { createRequire } from 'node:module';
import { gitCommit, type BackendInfo } from '@filmgenre/tf-runtime';

const require = createRequire(import.meta.url);

/** Exact versions of the packages that produced an artifact, so a model can be traced to its code. */
export function packageVersions(names: readonly string[]): Record<string, string> {
  const versions: Record<string, string> = { node: process.version };
  for (const name of names) {
    try {
      versions[name] = (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      versions[name] = 'unknown';
    }
  }
  return versions;
}

export interface Provenance {
  versions: Record<string, string>;
  gitCommit: string | null;
  backend: string;
  createdAt: string;
}

export function provenance(names: readonly string[], backend: BackendInfo): Provenance {
  return {
    versions: packageVersions(['@tensorflow/tfjs', ...names]),
    gitCommit: gitCommit(),
    backend: backend.name,
    createdAt: new Date().toISOString(),
  };
}
