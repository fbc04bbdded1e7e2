import type { LateFusionWeighting } from '@filmgenre/model-fusion';
import { z } from 'zod';
import { BACKENDS } from '@filmgenre/tf-runtime';

export const MODEL_CHOICES = ['cnn', 'lstm', 'fusion', 'all'] as const;

/** model-fusion's weightings plus `auto`; spelled out so the CLI parses flags without loading tfjs. */
export const FUSION_WEIGHTINGS = ['auto', 'equal', 'shared', 'per-genre'] as const satisfies readonly ('auto' | LateFusionWeighting)[];
export type ModelChoice = (typeof MODEL_CHOICES)[number];

/** Recommended defaults, chosen on the validation split (see docs/BENCHMARKS.md and the README). */
export const TrainConfigSchema = z.object({
  model: z.enum(MODEL_CHOICES).default('all'),
  data: z.string().optional(),
  out: z.string().default('models'),
  reportDir: z.string().optional(),
  epochs: z.number().int().positive().optional(),
  batchSize: z.number().int().positive().max(1024).optional(),
  learningRate: z.number().positive().max(1).optional(),
  limit: z.number().int().positive().optional(),
  seed: z.number().int().nonnegative().default(0),
  backend: z.enum(['auto', ...BACKENDS]).default('auto'),
  resume: z.boolean().default(false),
  patience: z.number().int().nonnegative().default(3),
  validationFraction: z.number().gt(0).lt(1).default(0.2),
  cnnVariant: z.enum(['study', 'residual', 'pretrained']).optional(),
  textVariant: z.enum(['bilstm', 'transformer']).optional(),
  textEmbeddings: z.enum(['learned', 'wink-100d']).optional(),
  fusionKind: z.enum(['late', 'joint']).default('late'),
  /** Late fusion: how the image weights are chosen; `auto` picks by cross-validation inside validation. */
  fusionWeighting: z.enum(FUSION_WEIGHTINGS).default('auto'),
  dropout: z.number().min(0).lt(1).optional(),
  classWeightStrength: z.number().min(0).max(1).default(0.5),
  augmentStrength: z.number().min(0).max(2).default(1),
  thresholds: z.enum(['micro', 'per-genre']).default('micro'),
  cacheDir: z.string().optional(),
});
export type TrainConfig = z.infer<typeof TrainConfigSchema>;

export const EvaluateConfigSchema = z.object({
  models: z.string().default('models'),
  data: z.string().optional(),
  output: z.string().optional(),
  limit: z.number().int().positive().optional(),
  backend: z.enum(['auto', ...BACKENDS]).default('auto'),
  cacheDir: z.string().optional(),
});
export type EvaluateConfig = z.infer<typeof EvaluateConfigSchema>;

/** Parses options at the boundary; a bad value names its flag. */
export function parseConfig<T extends z.ZodType>(schema: T, raw: unknown): z.infer<T> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `--${i.path.map(String).map(kebab).join('.')}: ${i.message}`);
    throw new Error(`invalid options:\n  ${lines.join('\n  ')}`);
  }
  return parsed.data;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
