import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { TOKENIZER_ID, tokenize } from './tokenize.js';

export const PAD_TOKEN = '';
export const OOV_TOKEN = '[UNK]';
export const PAD_INDEX = 0;
export const OOV_INDEX = 1;
export const VECTORIZER_FORMAT = 'filmgenre-text-vectorizer';
export const VECTORIZER_FORMAT_VERSION = 1;

const maxTokensField = z.int().min(3, 'must leave room for padding, [UNK] and at least one word');
const sequenceLengthField = z.int().positive();
const minCountField = z.int().positive();

export const TextVectorizerSettingsSchema = z
  .object({
    /** Vocabulary size cap, padding and out-of-vocabulary entries included (as in Keras). */
    maxTokens: maxTokensField.default(10_000),
    /** Length of every encoded sequence: shorter texts are padded, longer ones truncated, at the end. */
    sequenceLength: sequenceLengthField.default(100),
    /**
     * Words seen fewer times than this in adapt() stay out of the vocabulary. 1 (Keras' behaviour)
     * keeps everything up to the cap; on this dataset's training split that fills the last ~3,400
     * places with words seen once, chosen by the alphabetical tie-break.
     */
    minCount: minCountField.default(1),
  })
  .strict();

export type TextVectorizerSettings = z.output<typeof TextVectorizerSettingsSchema>;
export type TextVectorizerSettingsInput = z.input<typeof TextVectorizerSettingsSchema>;

/** What adapt() saw, kept with the vocabulary for reports. */
export interface AdaptStats {
  documents: number;
  tokens: number;
  /** Distinct tokens in the adapted texts, before the cap. */
  distinctTokens: number;
  /** Occurrences of the least frequent word that made it into the vocabulary. */
  minKeptCount: number;
}

const AdaptStatsSchema = z
  .object({
    documents: z.int().nonnegative(),
    tokens: z.int().nonnegative(),
    distinctTokens: z.int().nonnegative(),
    minKeptCount: z.int().nonnegative(),
  })
  .strict();

export const TextVectorizerJsonSchema = z
  .object({
    format: z.literal(VECTORIZER_FORMAT),
    version: z.literal(VECTORIZER_FORMAT_VERSION),
    tokenizer: z.literal(TOKENIZER_ID),
    settings: z.object({ maxTokens: maxTokensField, sequenceLength: sequenceLengthField, minCount: minCountField }).strict(),
    vocabulary: z.array(z.string()),
    stats: AdaptStatsSchema.optional(),
  })
  .strict()
  .superRefine((json, ctx) => {
    const { vocabulary, settings } = json;
    if (vocabulary[PAD_INDEX] !== PAD_TOKEN || vocabulary[OOV_INDEX] !== OOV_TOKEN) {
      ctx.addIssue({
        code: 'custom',
        path: ['vocabulary'],
        message: `must start with the padding token '' and '${OOV_TOKEN}'`,
      });
    }
    if (vocabulary.length > settings.maxTokens) {
      ctx.addIssue({
        code: 'custom',
        path: ['vocabulary'],
        message: `has ${vocabulary.length} entries, more than settings.maxTokens = ${settings.maxTokens}`,
      });
    }
    const seen = new Set<string>();
    vocabulary.forEach((token, i) => {
      if (seen.has(token)) ctx.addIssue({ code: 'custom', path: ['vocabulary', i], message: `duplicate token '${token}'` });
      seen.add(token);
    });
  });

export type TextVectorizerJson = z.output<typeof TextVectorizerJsonSchema>;

export class VectorizerError extends Error {
  override name = 'VectorizerError';
}

/** Out-of-vocabulary statistics of some texts against an adapted vocabulary. */
export interface CoverageStats {
  documents: number;
  /** Token occurrences (before truncation to sequenceLength). */
  tokens: number;
  oovTokens: number;
  /** oovTokens / tokens (0 when there are no tokens). */
  oovRate: number;
  distinctTokens: number;
  distinctOovTokens: number;
  /** Documents with more tokens than sequenceLength, whose tail encode() drops. */
  truncatedDocuments: number;
  meanTokensPerDocument: number;
  maxTokensPerDocument: number;
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

/**
 * Maps texts to fixed-length sequences of token ids, like Keras `TextVectorization` with
 * `output_mode='int'`: id 0 is padding, id 1 is '[UNK]' (any word outside the vocabulary), ids 2…
 * are the adapted words by descending frequency, ties broken by code-point order of the token so
 * that the same texts always give the same ids. Sequences are padded with 0 and truncated at the end
 * (Keras' default, 'post').
 */
export class TextVectorizer {
  readonly settings: Readonly<TextVectorizerSettings>;
  private vocabulary: string[] | undefined;
  private index = new Map<string, number>();
  private stats: AdaptStats | undefined;

  constructor(settings: TextVectorizerSettingsInput = {}) {
    const parsed = TextVectorizerSettingsSchema.safeParse(settings);
    if (!parsed.success) throw new VectorizerError(`invalid TextVectorizer settings: ${formatIssues(parsed.error)}`);
    this.settings = Object.freeze(parsed.data);
  }

  /** Builds the vocabulary from training texts, replacing any previous one. */
  adapt(texts: Iterable<string>): this {
    const counts = new Map<string, number>();
    let documents = 0;
    let tokens = 0;
    for (const text of texts) {
      documents++;
      for (const token of tokenize(text)) {
        counts.set(token, (counts.get(token) ?? 0) + 1);
        tokens++;
      }
    }
    // Code-point comparison rather than localeCompare: the order must not depend on the ICU build.
    const ranked = [...counts]
      .filter(([, count]) => count >= this.settings.minCount)
      .sort(([a, ca], [b, cb]) => cb - ca || (a < b ? -1 : a > b ? 1 : 0));
    const kept = ranked.slice(0, this.settings.maxTokens - 2);
    this.setVocabulary([PAD_TOKEN, OOV_TOKEN, ...kept.map(([token]) => token)]);
    this.stats = { documents, tokens, distinctTokens: counts.size, minKeptCount: kept.at(-1)?.[1] ?? 0 };
    return this;
  }

  get isAdapted(): boolean {
    return this.vocabulary !== undefined;
  }

  /** Entries in the vocabulary, padding and '[UNK]' included: the embedding layer's input dimension. */
  get vocabularySize(): number {
    return this.requireVocabulary().length;
  }

  get adaptStats(): Readonly<AdaptStats> | undefined {
    return this.stats;
  }

  /** The vocabulary in id order: [ '', '[UNK]', most frequent word, … ]. */
  getVocabulary(): readonly string[] {
    return this.requireVocabulary();
  }

  /** The id of a token (already tokenized), OOV_INDEX when it is not in the vocabulary. */
  tokenToIndex(token: string): number {
    this.requireVocabulary();
    return this.index.get(token) ?? OOV_INDEX;
  }

  indexToToken(index: number): string {
    const vocabulary = this.requireVocabulary();
    if (!Number.isInteger(index) || index < 0 || index >= vocabulary.length) {
      throw new RangeError(`token index ${index} is outside the vocabulary [0, ${vocabulary.length})`);
    }
    return vocabulary[index]!;
  }

  /** One text → Int32Array(sequenceLength): ids, then zeros; words past sequenceLength are dropped. */
  encode(text: string): Int32Array {
    const out = new Int32Array(this.settings.sequenceLength);
    this.encodeInto(text, out, 0);
    return out;
  }

  /** Texts → one row-major Int32Array of texts.length × sequenceLength ids. */
  encodeBatch(texts: readonly string[]): Int32Array {
    const length = this.settings.sequenceLength;
    const out = new Int32Array(texts.length * length);
    texts.forEach((text, i) => this.encodeInto(text, out, i * length));
    return out;
  }

  /** Texts → int32 tensor [texts.length, sequenceLength]; the caller disposes it. */
  encodeTensor(texts: readonly string[]): tf.Tensor2D {
    return tf.tensor2d(this.encodeBatch(texts), [texts.length, this.settings.sequenceLength], 'int32');
  }

  /** Ids back to tokens, padding skipped: for debugging and reports. */
  decode(ids: ArrayLike<number>): string[] {
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) if (ids[i] !== PAD_INDEX) tokens.push(this.indexToToken(ids[i]!));
    return tokens;
  }

  /** How much of these texts the vocabulary covers (e.g. validation overviews, for a report). */
  coverage(texts: Iterable<string>): CoverageStats {
    this.requireVocabulary();
    let documents = 0;
    let tokens = 0;
    let oovTokens = 0;
    let truncatedDocuments = 0;
    let maxTokensPerDocument = 0;
    const distinct = new Set<string>();
    const distinctOov = new Set<string>();
    for (const text of texts) {
      const words = tokenize(text);
      documents++;
      tokens += words.length;
      if (words.length > this.settings.sequenceLength) truncatedDocuments++;
      maxTokensPerDocument = Math.max(maxTokensPerDocument, words.length);
      for (const word of words) {
        distinct.add(word);
        if (!this.index.has(word)) {
          oovTokens++;
          distinctOov.add(word);
        }
      }
    }
    return {
      documents,
      tokens,
      oovTokens,
      oovRate: tokens ? oovTokens / tokens : 0,
      distinctTokens: distinct.size,
      distinctOovTokens: distinctOov.size,
      truncatedDocuments,
      meanTokensPerDocument: documents ? tokens / documents : 0,
      maxTokensPerDocument,
    };
  }

  toJSON(): TextVectorizerJson {
    return {
      format: VECTORIZER_FORMAT,
      version: VECTORIZER_FORMAT_VERSION,
      tokenizer: TOKENIZER_ID,
      settings: { ...this.settings },
      vocabulary: [...this.requireVocabulary()],
      ...(this.stats ? { stats: { ...this.stats } } : {}),
    };
  }

  /** Restores a vectorizer from toJSON() output (an object or its JSON text); throws VectorizerError naming the bad field. */
  static fromJSON(json: unknown): TextVectorizer {
    let value = json;
    if (typeof json === 'string') {
      try {
        value = JSON.parse(json);
      } catch (error) {
        throw new VectorizerError(`text vectorizer: not valid JSON (${(error as Error).message})`);
      }
    }
    const parsed = TextVectorizerJsonSchema.safeParse(value);
    if (!parsed.success) throw new VectorizerError(`text vectorizer: ${formatIssues(parsed.error)}`);
    const vectorizer = new TextVectorizer(parsed.data.settings);
    vectorizer.setVocabulary(parsed.data.vocabulary);
    vectorizer.stats = parsed.data.stats;
    return vectorizer;
  }

  private setVocabulary(vocabulary: string[]): void {
    this.vocabulary = vocabulary;
    this.index = new Map(vocabulary.map((token, i) => [token, i]));
  }

  private requireVocabulary(): string[] {
    if (!this.vocabulary) throw new VectorizerError('TextVectorizer has no vocabulary yet: call adapt() or fromJSON() first');
    return this.vocabulary;
  }

  private encodeInto(text: string, out: Int32Array, offset: number): void {
    this.requireVocabulary();
    const words = tokenize(text);
    const n = Math.min(words.length, this.settings.sequenceLength);
    for (let i = 0; i < n; i++) out[offset + i] = this.index.get(words[i]!) ?? OOV_INDEX;
  }
}
