import { join } from 'node:path';
import { findWorkspaceRoot } from './dataset.js';

/** Where decoded posters, features and embeddings are cached unless told otherwise: `<workspace>/.cache` (git-ignored). */
export function defaultCacheRoot(workspaceRoot = findWorkspaceRoot()): string {
  return join(workspaceRoot, '.cache');
}
