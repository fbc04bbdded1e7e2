import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * SentencePiece (unigram) tokenization for the Universal Sentence Encoder Lite vocabulary: text →
 * piece ids, pure preprocessing with no model and no tfjs.
 *
 * Compatibility target: the tokenizer of `@tensorflow-models/universal-sentence-encoder` 1.3
 * (a port of SentencePiece's `EncodeAsIds`), whose ids USE-lite's published TF.js graph expects.
 * `sentencepiece.test.ts` checks our ids against ids that implementation produced for real
 * overviews and for edge cases (fixture `sentencepiece.fixture.json`). Its observable rules, which
 * this implementation reproduces with its own code:
 *
 * 1. Normalisation: Unicode NFKC; if the result is non-empty, a word-boundary mark '▁' (U+2581) is
 *    put in front and every ' ' becomes '▁'. No lower-casing (the vocabulary is cased).
 * 2. Pieces: every vocabulary entry from index `reservedSymbols` (6: unknown, <s>, </s> and three
 *    user symbols) on; a piece listed twice keeps its last index and score.
 * 3. Lattice: at each character, every piece that starts there; a character where no piece starts is
 *    an unknown piece (id 0, score 0, one character long).
 * 4. Viterbi over log-probabilities, ends visited left to right and, for one end, candidate starts
 *    left to right; a candidate replaces the best so far when its score is ≥ (so ties go to the
 *    later start, i.e. the shorter last piece), and a best score of exactly 0 counts as "none yet".
 * 5. Consecutive unknown pieces are merged into one.
 *
 * (The reference steps back over the final piece by its UTF-16 length, we by its length in code
 * points; the two agree because no piece of this vocabulary has a character outside the BMP.)
 *
 * One deliberate addition (`normalizeWhitespace`, on by default): runs of whitespace (spaces, tabs,
 * newlines) collapse to one space and the text is trimmed first, as SentencePiece itself does with
 * its default `remove_extra_whitespaces`; the TF.js port does not, and would turn "a  b" into an
 * extra '▁' piece and a tab into an unknown piece. On text without such runs (every overview of the
 * development set) the ids are identical to the reference's.
 */

/** Bump when the rules above change: cached embeddings are keyed by it. */
export const SENTENCEPIECE_TOKENIZER_VERSION = 'filmgenre-spm-unigram-v1';

/** U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's word-boundary mark. */
export const WORD_BOUNDARY = '\u2581';
export const UNKNOWN_PIECE_ID = 0;
/** Unknown, <s>, </s> and three user-defined symbols precede the real pieces in USE's vocabulary. */
export const DEFAULT_RESERVED_SYMBOLS = 6;

/**
 * [piece, log-probability] per id, as in USE-lite's `vocab.json`. That file has `null` for the score
 * of seven pieces containing ':' (':', '://', '▁:', '▁:)', '▁:(', '):', '▁:-)'); the reference adds
 * it to a number, where null counts as 0, so `readSentencePieceVocabulary` reads it as 0.
 */
export type SentencePieceVocabulary = ReadonlyArray<readonly [string, number]>;

export interface SentencePieceOptions {
  reservedSymbols?: number;
  /** Trim and collapse whitespace runs before encoding (default true; see the module comment). */
  normalizeWhitespace?: boolean;
}

interface TrieNode {
  children: Map<string, TrieNode>;
  /** Vocabulary id of the piece ending here, or -1. */
  id: number;
  score: number;
}

function newNode(): TrieNode {
  return { children: new Map(), id: -1, score: 0 };
}

/** Reads and validates a `[[piece, score], …]` JSON vocabulary file. */
export function readSentencePieceVocabulary(path: string): SentencePieceVocabulary {
  return parseSentencePieceVocabulary(readFileSync(path, 'utf8'), path);
}

/** Parses and validates a `[[piece, score], …]` JSON vocabulary; `where` names it in errors. */
export function parseSentencePieceVocabulary(text: string, where: string): SentencePieceVocabulary {
  const path = where;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: not a readable JSON vocabulary (${(error as Error).message})`);
  }
  if (Array.isArray(parsed)) {
    parsed = parsed.map((entry: unknown) => (Array.isArray(entry) && entry.length === 2 && entry[1] === null ? [entry[0], 0] : entry));
  }
  return validateVocabulary(parsed, path);
}

function validateVocabulary(value: unknown, where: string): SentencePieceVocabulary {
  if (!Array.isArray(value) || value.length === 0) throw new Error(`${where}: vocabulary must be a non-empty array of [piece, score]`);
  value.forEach((entry: unknown, i) => {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string' || typeof entry[1] !== 'number' || !Number.isFinite(entry[1])) {
      throw new Error(`${where}: vocabulary entry ${i} is ${JSON.stringify(entry)}, expected [piece, finite score]`);
    }
  });
  return value as SentencePieceVocabulary;
}

/** NFKC, optional whitespace clean-up, '▁' prefix and spaces → '▁' (rule 1). */
export function normalizeForSentencePiece(text: string, options: { normalizeWhitespace?: boolean } = {}): string {
  let normalized = text.normalize('NFKC');
  if (options.normalizeWhitespace ?? true) normalized = normalized.replace(/\s+/gu, ' ').trim();
  return normalized.length > 0 ? WORD_BOUNDARY + normalized.replaceAll(' ', WORD_BOUNDARY) : '';
}

export class SentencePieceTokenizer {
  readonly version = SENTENCEPIECE_TOKENIZER_VERSION;
  /** sha256 (hex, 16 chars) of the rules' version, the options and every [piece, score]. */
  readonly fingerprint: string;
  private readonly root = newNode();
  private readonly reservedSymbols: number;
  private readonly normalizeWhitespace: boolean;

  constructor(private readonly vocabulary: SentencePieceVocabulary, options: SentencePieceOptions = {}) {
    validateVocabulary(vocabulary, 'SentencePieceTokenizer');
    this.reservedSymbols = options.reservedSymbols ?? DEFAULT_RESERVED_SYMBOLS;
    this.normalizeWhitespace = options.normalizeWhitespace ?? true;
    if (!(Number.isInteger(this.reservedSymbols) && this.reservedSymbols >= 1 && this.reservedSymbols < vocabulary.length)) {
      throw new Error(`reservedSymbols must be an integer in [1, ${vocabulary.length}), got ${this.reservedSymbols}`);
    }
    for (let id = this.reservedSymbols; id < vocabulary.length; id++) {
      const [piece, score] = vocabulary[id]!;
      if (piece.length === 0) continue;
      let node = this.root;
      for (const char of piece) {
        let next = node.children.get(char);
        if (!next) {
          next = newNode();
          node.children.set(char, next);
        }
        node = next;
      }
      node.id = id;
      node.score = score;
    }
    const hash = createHash('sha256').update(`${this.version}\0${this.reservedSymbols}\0${this.normalizeWhitespace}\0`);
    for (const [piece, score] of vocabulary) hash.update(`${piece}\0${score}\n`);
    this.fingerprint = hash.digest('hex').slice(0, 16);
  }

  static fromFile(path: string, options?: SentencePieceOptions): SentencePieceTokenizer {
    return new SentencePieceTokenizer(readSentencePieceVocabulary(path), options);
  }

  get vocabularySize(): number {
    return this.vocabulary.length;
  }

  /** Text → piece ids (may be empty: an empty or all-whitespace text has no pieces). */
  encode(text: string): number[] {
    const chars = Array.from(normalizeForSentencePiece(text, { normalizeWhitespace: this.normalizeWhitespace }));
    const n = chars.length;
    if (n === 0) return [];
    // best[e]: score of the best segmentation of chars[0, e); lastId/lastLen: its final piece.
    const best = new Float64Array(n + 1);
    const lastId = new Int32Array(n + 1);
    const lastLen = new Int32Array(n + 1);
    const consider = (end: number, id: number, length: number, score: number) => {
      const total = score + best[end - length]!;
      if (best[end] === 0 || total >= best[end]!) {
        best[end] = total;
        lastId[end] = id;
        lastLen[end] = length;
      }
    };
    // Visiting starts in increasing order offers, for every end, its candidates by increasing start,
    // and best[start] is final by then (all pieces ending at `start` began before it).
    for (let start = 0; start < n; start++) {
      let node: TrieNode | undefined = this.root;
      let matched = false;
      for (let end = start + 1; end <= n; end++) {
        node = node.children.get(chars[end - 1]!);
        if (!node) break;
        if (node.id >= 0) {
          matched = true;
          consider(end, node.id, end - start, node.score);
        }
      }
      if (!matched) consider(start + 1, UNKNOWN_PIECE_ID, 1, 0);
    }
    const reversed: number[] = [];
    for (let end = n; end > 0; end -= lastLen[end]!) {
      const id = lastId[end]!;
      // Rule 5: a run of unknown pieces becomes one.
      if (!(id === UNKNOWN_PIECE_ID && reversed[reversed.length - 1] === UNKNOWN_PIECE_ID)) reversed.push(id);
    }
    return reversed.reverse();
  }

  /** Ids → their pieces (for debugging and tests). */
  pieces(ids: readonly number[]): string[] {
    return ids.map((id) => {
      const entry = this.vocabulary[id];
      if (!entry) throw new RangeError(`piece id ${id} is outside the vocabulary (size ${this.vocabulary.length})`);
      return entry[0];
    });
  }
}
