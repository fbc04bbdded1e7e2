import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { replaceDirAtomic } from './atomic.js';
import { fileSystemIO, MODEL_JSON } from './io-handler.js';

export const METADATA_JSON = 'metadata.json';
export const MODEL_DIR_FORMAT = 1;

/** What a saved model directory says about itself: everything serving needs besides the weights. */
export const ModelMetadataSchema = z.object({
  format: z.literal(MODEL_DIR_FORMAT),
  name: z.string().min(1),
  modality: z.enum(['image', 'text', 'fusion']),
  variant: z.string().min(1),
  genres: z.array(z.string()).min(1),
  /** Decision threshold per genre, tuned on validation. */
  thresholds: z.array(z.number().min(0).max(1)),
  /** Modality-specific preprocessing settings (image size, sequence length, vocabulary file…). */
  preprocessing: z.record(z.string(), z.unknown()),
  metrics: z.record(z.string(), z.unknown()).default({}),
  history: z.array(z.record(z.string(), z.number())).default([]),
  training: z.record(z.string(), z.unknown()).default({}),
  versions: z.record(z.string(), z.string()),
  gitCommit: z.string().nullable(),
  backend: z.string(),
  createdAt: z.string(),
}).refine((m) => m.thresholds.length === m.genres.length, { message: 'thresholds must have one value per genre' });
export type ModelMetadata = z.infer<typeof ModelMetadataSchema>;

export interface SaveModelDirOptions {
  model?: tf.LayersModel;
  metadata: ModelMetadata;
  /** Extra files of the artifact (vocabulary, fusion weights…), by file name. */
  files?: Record<string, string | Uint8Array>;
  /** Writes further content (e.g. a sub-directory) into the directory before it is swapped in. */
  writeExtra?: (tmpDir: string) => void | Promise<void>;
}

/** Writes model.json + weights.bin + metadata.json (+ extra files) as one atomic directory swap. */
export async function saveModelDir(dir: string, options: SaveModelDirOptions): Promise<void> {
  const metadata = ModelMetadataSchema.parse(options.metadata);
  await replaceDirAtomic(dir, async (tmp) => {
    if (options.model) await options.model.save(fileSystemIO(tmp), { includeOptimizer: false });
    for (const [name, content] of Object.entries(options.files ?? {})) writeFileSync(join(tmp, name), content);
    await options.writeExtra?.(tmp);
    writeFileSync(join(tmp, METADATA_JSON), `${JSON.stringify(metadata, null, 2)}\n`);
  });
}

export class ModelDirError extends Error {
  override name = 'ModelDirError';
}

export function readModelMetadata(dir: string): ModelMetadata {
  const path = join(dir, METADATA_JSON);
  if (!existsSync(path)) throw new ModelDirError(`${path}: not found — is ${dir} a model directory written by the trainer?`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ModelDirError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = ModelMetadataSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ModelDirError(`${path}: field '${issue.path.join('.') || '(root)'}' ${issue.message}`);
  }
  return parsed.data;
}

export interface LoadedModelDir {
  dir: string;
  metadata: ModelMetadata;
  model?: tf.LayersModel;
  readText(name: string): string;
}

/** Loads a directory written by saveModelDir, on whatever backend is active. */
export async function loadModelDir(dir: string): Promise<LoadedModelDir> {
  const metadata = readModelMetadata(dir);
  const model = existsSync(join(dir, MODEL_JSON)) ? await tf.loadLayersModel(fileSystemIO(dir)) : undefined;
  return {
    dir,
    metadata,
    model,
    readText(name: string) {
      const path = join(dir, name);
      if (!existsSync(path)) throw new ModelDirError(`${path}: not found (the model directory is incomplete)`);
      return readFileSync(path, 'utf8');
    },
  };
}

/** The commit that produced an artifact, or null outside a git checkout. */
export function gitCommit(cwd = process.cwd()): string | null {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return null;
  }
}
