import * as tf from '@tensorflow/tfjs';
import { canonicalJson, replaceDirAtomic } from '@filmgenre/core';
import { fileSystemIO, modelArtifactsOf, MODEL_JSON, WEIGHTS_BIN } from '@filmgenre/tf-runtime';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import type { z } from 'zod';
import { ModelDirError } from './errors.js';
import { encodeFilmsRecord, FILMS_JSON, parseFilmsRecord, type FilmsRecord, type FilmsRecordInput } from './films.js';
import { METADATA_JSON, MODEL_DIR_FORMAT, ModelMetadataSchema, type ModelMetadata, type ModelMetadataInput } from './metadata.js';

export { MODEL_JSON, WEIGHTS_BIN };

export interface SaveModelDirOptions {
  /** The Layers model, written as model.json + weights.bin at the top of the directory. */
  model?: tf.LayersModel;
  metadata: ModelMetadataInput;
  /** The films it was trained on and its predictions for the held-out ones (films.json). */
  films: FilmsRecordInput;
  /** Extra files of the artifact (vocabulary, fusion parameters…), by path relative to the directory. */
  files?: Record<string, string | Uint8Array>;
  /** Writes further content (e.g. a sub-directory) into the directory before it is hashed and swapped in. */
  writeExtra?: (tmpDir: string) => void | Promise<void>;
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Every file under dir except metadata.json, as POSIX paths relative to dir, sorted. */
function listFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path, base));
    else if (relative(base, path) !== METADATA_JSON) out.push(relative(base, path).split(sep).join('/'));
  }
  return out;
}

/** The sha256 of each field of a metadata object but `checksums` itself, over its canonical JSON. */
export function fieldChecksums(metadata: Readonly<Record<string, unknown>>): Record<string, string> {
  return Object.fromEntries(Object.keys(metadata).filter((field) => field !== 'checksums').sort().map((field) => [field, sha256(canonicalJson(metadata[field]))]));
}

/**
 * One digest for a whole model directory, by which a fusion pins its members: over the checksums of
 * its metadata's fields, so it covers the metadata (preprocessing, thresholds…) and, through
 * `files`, every file's bytes.
 */
export function artifactDigest(metadata: Pick<ModelMetadata, 'checksums'>): string {
  return sha256(canonicalJson(metadata.checksums)).slice(0, 16);
}

/**
 * Writes a model directory as one atomic swap: the model, the extra files and films.json, then
 * metadata.json with the sha256 of every one of them, so that loading can refuse a changed file.
 * Returns the metadata as written.
 */
export async function saveModelDir(dir: string, options: SaveModelDirOptions): Promise<ModelMetadata> {
  let written: ModelMetadata | undefined;
  await replaceDirAtomic(dir, async (tmp) => {
    if (options.model) await options.model.save(fileSystemIO(tmp), { includeOptimizer: false });
    for (const [name, content] of Object.entries(options.files ?? {})) writeFileSync(join(tmp, name), content);
    writeFileSync(join(tmp, FILMS_JSON), encodeFilmsRecord(options.films, options.metadata.genres.length));
    await options.writeExtra?.(tmp);
    const files = Object.fromEntries(listFiles(tmp).map((path) => [path, sha256(readFileSync(join(tmp, path)))]));
    const parsed = ModelMetadataSchema.safeParse({ ...options.metadata, format: MODEL_DIR_FORMAT, files, checksums: {} });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new ModelDirError(`${dir}: metadata field '${issue.path.join('.') || '(root)'}' ${issue.message}`);
    }
    // Checksums of the fields as they will read back (JSON drops undefined values).
    const { checksums: _, ...fields } = parsed.data;
    written = { ...parsed.data, checksums: fieldChecksums(JSON.parse(JSON.stringify(fields)) as Record<string, unknown>) };
    writeFileSync(join(tmp, METADATA_JSON), `${JSON.stringify(written, null, 2)}\n`);
  });
  return written!;
}

/**
 * Reads and validates metadata.json alone (cheap: no file is hashed), and refuses a field edited,
 * added or removed after training, by its recorded checksum; errors name the file and field.
 */
export function readModelMetadata(dir: string): ModelMetadata {
  const path = join(dir, METADATA_JSON);
  if (!existsSync(path)) throw new ModelDirError(`${path}: not found — is ${dir} a model directory written by the trainer?`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ModelDirError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  const format = (raw as { format?: unknown } | null)?.format;
  if (typeof format === 'number' && format !== MODEL_DIR_FORMAT) {
    throw new ModelDirError(`${path}: format ${format}, this code reads format ${MODEL_DIR_FORMAT} (retrain the model: npx nx train trainer)`);
  }
  const parsed = ModelMetadataSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ModelDirError(`${path}: field '${issue.path.join('.') || '(root)'}' ${issue.message}`);
  }
  const recorded = parsed.data.checksums;
  const actual = fieldChecksums(raw as Record<string, unknown>);
  for (const field of [...new Set([...Object.keys(actual), ...Object.keys(recorded)])].sort()) {
    if (actual[field] === recorded[field]) continue;
    const change = !(field in actual) ? 'was removed' : !(field in recorded) ? 'was added' : 'changed';
    throw new ModelDirError(`${path}: field '${field}' ${change} after training (it does not match its sha256 in 'checksums'): restore metadata.json or retrain`);
  }
  return parsed.data;
}

/** A model directory whose every file matched its recorded sha256 when it was opened. */
export interface ModelDir {
  dir: string;
  metadata: ModelMetadata;
  /** artifactDigest of its metadata and files. */
  digest: string;
  readBytes(path: string): Uint8Array;
  readText(path: string): string;
  /** The file as JSON, then through `parse` (which may throw): either failure names the file. */
  readJson<T = unknown>(path: string, parse?: (raw: unknown) => T): T;
  /** The file as float32 values, refused unless it holds exactly `count` of them (`shape` says which, for the message). */
  readFloat32(path: string, count: number, shape: string): Float32Array;
  /** metadata.preprocessing checked against `schema`: a failure names the field. */
  preprocessing<S extends z.ZodType>(schema: S): z.output<S>;
  /** The tfjs artifacts (model.json + weights) stored at `subdir` ('' for the top), from the verified files. */
  modelArtifacts(subdir?: string): tf.io.ModelArtifacts;
  /** The Layers model at the top of the directory, if it has one. */
  loadLayersModel(): Promise<tf.LayersModel | undefined>;
  films(): FilmsRecord;
}

/** Bytes per stored value of a weight (after quantization); undefined for variable-length strings. */
function storedBytes(spec: tf.io.WeightsManifestEntry): number | undefined {
  if (spec.quantization) return spec.quantization.dtype === 'uint8' ? 1 : 2;
  return spec.dtype === 'string' ? undefined : spec.dtype === 'bool' ? 1 : 4;
}

/**
 * A trained float32 weight is never NaN or ±Infinity: one that is marks damage the digests cannot
 * see (the files were rewritten with their hashes, or trained that way). Behind a ReLU such weights
 * can still give finite outputs, so the warm-up check alone would let them serve.
 */
function assertFiniteWeights(artifacts: tf.io.ModelArtifacts, where: string): void {
  const specs = artifacts.weightSpecs ?? [];
  const data = artifacts.weightData;
  if (!data || Array.isArray(data)) return;
  let offset = 0;
  for (const spec of specs) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const bytes = storedBytes(spec);
    if (bytes === undefined) return; // strings come last in practice; nothing after them to locate
    if (spec.dtype === 'float32' && !spec.quantization) {
      const values = offset % 4 === 0 ? new Float32Array(data, offset, count) : new Float32Array(data.slice(offset, offset + count * 4));
      for (let i = 0; i < count; i++) {
        if (!Number.isFinite(values[i]!)) throw new ModelDirError(`${where}: weight '${spec.name}' holds ${values[i]} at index ${i}: the weights are damaged (restore the directory or retrain)`);
      }
    }
    offset += count * bytes;
  }
}

/**
 * Opens a model directory: validates metadata.json (and its `kind`, when one is expected), then checks
 * every file it lists against its sha256 and refuses a missing or changed one, naming it. Reads go
 * through the returned handle and may only touch listed files, so nothing unverified reaches a model.
 */
export function openModelDir(dir: string, expected: { kind?: string } = {}): ModelDir {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ModelDirError(`${dir}: model directory not found`);
  const metadata = readModelMetadata(dir);
  const metadataPath = join(dir, METADATA_JSON);
  if (expected.kind !== undefined && metadata.kind !== expected.kind) throw new ModelDirError(`${metadataPath}: kind is '${metadata.kind}', expected '${expected.kind}'`);
  const bytes = new Map<string, Uint8Array>();
  for (const [path, expected] of Object.entries(metadata.files)) {
    const full = join(dir, path);
    if (!existsSync(full)) throw new ModelDirError(`${full}: listed in ${METADATA_JSON} but missing (the model directory is incomplete)`);
    const content = readFileSync(full);
    const actual = sha256(content);
    if (actual !== expected) {
      throw new ModelDirError(`${full}: sha256 ${actual.slice(0, 12)}… does not match ${expected.slice(0, 12)}… recorded in ${METADATA_JSON}: the file changed after training (restore it or retrain)`);
    }
    bytes.set(path, content);
  }
  const readBytes = (path: string): Uint8Array => {
    const content = bytes.get(path);
    if (!content) throw new ModelDirError(`${join(dir, path)}: not one of the files recorded in ${join(dir, METADATA_JSON)}`);
    return content;
  };
  const readText = (path: string) => Buffer.from(readBytes(path)).toString('utf8');
  const readJson = <T>(path: string, parse: (raw: unknown) => T = (raw) => raw as T): T => {
    const text = readText(path);
    try {
      return parse(JSON.parse(text));
    } catch (error) {
      if (error instanceof ModelDirError) throw error;
      throw new ModelDirError(`${join(dir, path)}: not valid (${(error as Error).message.split('\n')[0]})`);
    }
  };
  const modelArtifacts = (subdir = ''): tf.io.ModelArtifacts => {
    const prefix = subdir ? `${subdir}/` : '';
    const jsonPath = `${prefix}${MODEL_JSON}`;
    let modelJson: tf.io.ModelJSON;
    try {
      modelJson = JSON.parse(readText(jsonPath)) as tf.io.ModelJSON;
    } catch (error) {
      if (error instanceof ModelDirError) throw error;
      throw new ModelDirError(`${join(dir, jsonPath)}: not valid JSON (${(error as Error).message})`);
    }
    const artifacts = modelArtifactsOf(modelJson, (path) => readBytes(`${prefix}${path}`));
    assertFiniteWeights(artifacts, join(dir, jsonPath));
    return artifacts;
  };
  return {
    dir,
    metadata,
    digest: artifactDigest(metadata),
    readBytes,
    readText,
    readJson,
    readFloat32(path, count, shape) {
      const content = readBytes(path);
      if (content.byteLength !== count * 4) throw new ModelDirError(`${join(dir, path)}: ${content.byteLength} bytes, expected ${shape} × 4`);
      return new Float32Array(content.buffer.slice(content.byteOffset, content.byteOffset + content.byteLength));
    },
    preprocessing(schema) {
      const parsed = schema.safeParse(metadata.preprocessing);
      if (!parsed.success) throw new ModelDirError(`${metadataPath}: preprocessing.${parsed.error.issues[0]!.path.join('.')} ${parsed.error.issues[0]!.message}`);
      return parsed.data;
    },
    modelArtifacts,
    async loadLayersModel() {
      if (!bytes.has(MODEL_JSON)) return undefined;
      try {
        return await tf.loadLayersModel(tf.io.fromMemory(modelArtifacts()));
      } catch (error) {
        throw new ModelDirError(`${join(dir, MODEL_JSON)}: could not load the model (${(error as Error).message})`);
      }
    },
    films: () => parseFilmsRecord(readText(FILMS_JSON), metadata.genres.length, join(dir, FILMS_JSON)),
  };
}
