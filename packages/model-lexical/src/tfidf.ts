import { tokenize, TOKENIZER_ID } from '@filmgenre/data-text';
import { z } from 'zod';

/**
 * Rows of a sparse matrix (CSR): row i holds `values[start[i] … start[i+1])` at columns
 * `columns[…]`, columns ascending within a row.
 */
export interface SparseRows {
  rows: number;
  /** Number of columns (the vocabulary's size). */
  dim: number;
  start: Int32Array;
  columns: Int32Array;
  values: Float32Array;
}

export const TfidfSettingsSchema = z.object({
  /** Longest n-gram of consecutive words (1: words only, 2: words and word pairs). */
  maxNgram: z.int().min(1).max(3).default(2),
  /** Terms in fewer fitting documents than this stay out of the vocabulary. */
  minDocuments: z.int().positive().default(1),
  /** 1 + log(count) instead of the raw count, so one repeated word does not dominate a short text. */
  sublinearTf: z.boolean().default(false),
}).strict();
export type TfidfSettings = z.output<typeof TfidfSettingsSchema>;

export const TFIDF_FORMAT = 'filmgenre-tfidf';

export const TfidfJsonSchema = z.object({
  format: z.literal(TFIDF_FORMAT),
  version: z.literal(1),
  tokenizer: z.literal(TOKENIZER_ID),
  settings: TfidfSettingsSchema,
  documents: z.int().positive(),
  terms: z.array(z.string().min(1)),
  idf: z.array(z.number().positive()),
}).strict().refine((json) => json.terms.length === json.idf.length, { message: 'one idf per term', path: ['idf'] });
export type TfidfJson = z.output<typeof TfidfJsonSchema>;

/** The n-grams (1 … maxNgram consecutive words, joined by one space) of a text, with repeats. */
export function ngramsOf(text: string, maxNgram: number): string[] {
  const words = tokenize(text);
  const out: string[] = [];
  for (let n = 1; n <= maxNgram; n++) {
    for (let i = 0; i + n <= words.length; i++) out.push(n === 1 ? words[i]! : words.slice(i, i + n).join(' '));
  }
  return out;
}

/**
 * TF-IDF of word n-grams over the product's own tokenizer (data-text's `tokenize`): the vocabulary
 * and the smoothed idf, ln((1 + n) / (1 + df)) + 1, come from the fitting texts only; each row is
 * L2-normalised, so a text's length does not set its scale.
 */
export class TfidfVectorizer {
  private readonly index: Map<string, number>;

  private constructor(readonly settings: TfidfSettings, readonly documents: number, readonly terms: readonly string[], readonly idf: Float32Array) {
    this.index = new Map(terms.map((t, i) => [t, i]));
  }

  get dim(): number {
    return this.terms.length;
  }

  /** Learns the vocabulary (sorted, so the same texts give the same columns) and the idf from `texts`. */
  static fit(texts: readonly string[], settings: Partial<TfidfSettings> = {}): TfidfVectorizer {
    const parsed = TfidfSettingsSchema.parse(settings);
    if (texts.length === 0) throw new RangeError('TF-IDF needs at least one text to fit on');
    const df = new Map<string, number>();
    for (const text of texts) for (const term of new Set(ngramsOf(text, parsed.maxNgram))) df.set(term, (df.get(term) ?? 0) + 1);
    const terms = [...df.keys()].filter((t) => df.get(t)! >= parsed.minDocuments).sort();
    const idf = Float32Array.from(terms, (t) => Math.log((1 + texts.length) / (1 + df.get(t)!)) + 1);
    return new TfidfVectorizer(parsed, texts.length, terms, idf);
  }

  static fromJson(raw: unknown, where: string): TfidfVectorizer {
    const parsed = TfidfJsonSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new RangeError(`${where}: field '${issue.path.join('.') || '(root)'}' ${issue.message}`);
    }
    const json = parsed.data;
    return new TfidfVectorizer(json.settings, json.documents, json.terms, Float32Array.from(json.idf));
  }

  toJson(): TfidfJson {
    return { format: TFIDF_FORMAT, version: 1, tokenizer: TOKENIZER_ID, settings: this.settings, documents: this.documents, terms: [...this.terms], idf: Array.from(this.idf) };
  }

  /** The texts' TF-IDF rows; n-grams outside the vocabulary are dropped, a text with none is an empty row. */
  transform(texts: readonly string[]): SparseRows {
    const start = new Int32Array(texts.length + 1);
    const columns: number[] = [];
    const values: number[] = [];
    texts.forEach((text, i) => {
      const counts = new Map<number, number>();
      for (const term of ngramsOf(text, this.settings.maxNgram)) {
        const column = this.index.get(term);
        if (column !== undefined) counts.set(column, (counts.get(column) ?? 0) + 1);
      }
      const row = [...counts.entries()].sort((a, b) => a[0] - b[0]);
      const weighted = row.map(([column, count]) => (this.settings.sublinearTf ? 1 + Math.log(count) : count) * this.idf[column]!);
      const norm = Math.sqrt(weighted.reduce((s, v) => s + v * v, 0));
      row.forEach(([column], j) => {
        columns.push(column);
        values.push(norm > 0 ? weighted[j]! / norm : 0);
      });
      start[i + 1] = columns.length;
    });
    return { rows: texts.length, dim: this.dim, start, columns: Int32Array.from(columns), values: Float32Array.from(values) };
  }
}
