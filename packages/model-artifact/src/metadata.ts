import { z } from 'zod';

export const METADATA_JSON = 'metadata.json';
/**
 * 2: adds kind, split, members and the sha256 of every file. 3: metadata.json under the same check as
 * the files (a sha256 of each of its fields), fusion members pinned by a digest that covers their
 * metadata, thresholds strictly between 0 and 1. Directories of an older format must be retrained.
 */
export const MODEL_DIR_FORMAT = 3;
export const MODALITIES = ['image', 'text', 'fusion'] as const;
export type Modality = (typeof MODALITIES)[number];

const SplitRecordSchema = z.object({
  seed: z.int().nonnegative(),
  folds: z.int().min(2),
  validationFold: z.int().nonnegative().nullable(),
  films: z.int().nonnegative(),
  validationFilms: z.int().nonnegative(),
  digest: z.string().min(8),
});

/** What a fusion model records of each member it was fitted on, so a swapped member is refused. */
export const MemberRecordSchema = z.object({
  kind: z.string().min(1),
  modality: z.enum(['image', 'text']),
  variant: z.string().min(1),
  /** Digest of the member directory: its metadata and, through it, every file (see artifactDigest). */
  digest: z.string().min(8),
  createdAt: z.string(),
});
export type MemberRecord = z.infer<typeof MemberRecordSchema>;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a hex sha256');

/** What a saved model directory says about itself: everything serving needs besides the files it lists. */
export const ModelMetadataSchema = z.object({
  format: z.literal(MODEL_DIR_FORMAT),
  /** The model key, also the directory name under the models directory (cnn, lstm, fusion…). */
  name: z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be a lower-case key such as cnn or lstm'),
  /** Which loader opens it (a model package's kind, e.g. poster-classifier). */
  kind: z.string().min(1),
  modality: z.enum(MODALITIES),
  variant: z.string().min(1),
  genres: z.array(z.string()).min(1),
  /** Decision threshold per genre: at 0 a genre would be predicted for every film, at 1 for none. */
  thresholds: z.array(z.number().gt(0, 'must be above 0').lt(1, 'must be below 1')),
  /** Modality-specific preprocessing settings (image size, sequence length, vocabulary file…). */
  preprocessing: z.record(z.string(), z.unknown()),
  /** The films it was trained and validated on. */
  split: SplitRecordSchema,
  /** Fusion only: the member models, by key, it was fitted on. */
  members: z.record(z.string(), MemberRecordSchema).optional(),
  metrics: z.record(z.string(), z.unknown()).default({}),
  history: z.array(z.record(z.string(), z.number())).default([]),
  training: z.record(z.string(), z.unknown()).default({}),
  /** sha256 of every other file of the directory, by path relative to it. */
  files: z.record(z.string(), Sha256),
  /** sha256 of each other field of metadata.json (its canonical JSON), by field: an edited field is refused by name. */
  checksums: z.record(z.string(), Sha256),
  versions: z.record(z.string(), z.string()),
  gitCommit: z.string().nullable(),
  backend: z.string(),
  /** Models over a frozen encoder: the runtime that computed the features they were trained on (`onnxruntime <version>`, `tfjs <backend>`). */
  encoderRuntime: z.string().optional(),
  createdAt: z.string(),
}).refine((m) => m.thresholds.length === m.genres.length, { message: 'thresholds must have one value per genre', path: ['thresholds'] });
export type ModelMetadata = z.infer<typeof ModelMetadataSchema>;
/** What a model package fills in; the file and field hashes are computed when the directory is written. */
export type ModelMetadataInput = Omit<z.input<typeof ModelMetadataSchema>, 'files' | 'format' | 'checksums'>;
