import { createRequire } from 'node:module';

interface NaturalRegexpTokenizer {
  /** With `gaps: false` natural returns `String.prototype.match`, i.e. null when nothing matches. */
  tokenize(text: string): string[] | null;
}
type RegexpTokenizerClass = new (options: { pattern: RegExp; gaps?: boolean }) => NaturalRegexpTokenizer;

// natural's main entry loads its storage back-ends (mongoose, pg, redis), each of which calls
// dotenv.config(): about a second of start-up, five log lines, and a .env file silently merged into
// process.env. The tokenizer module on its own has none of that.
const require = createRequire(import.meta.url);
const { RegexpTokenizer } = require('natural/lib/natural/tokenizers/regexp_tokenizer.js') as {
  RegexpTokenizer: RegexpTokenizerClass;
};

/**
 * Identifies the tokenization rules below. A saved vocabulary records it, so a vocabulary built with
 * different rules is refused instead of silently mapping words to the wrong ids.
 */
export const TOKENIZER_ID = 'filmgenre-words-v1';

const WORD = String.raw`[\p{L}\p{M}\p{N}]+`;
// An apostrophe joins two letter runs ("don't", "o'brien") unless it starts a possessive or "is"
// clitic "'s" that ends the word: "daughter's" → "daughter" + "'s".
const JOINING_APOSTROPHE = String.raw`'(?!s(?![\p{L}\p{M}\p{N}]))`;
// "1,000" and "3.5" stay single numbers instead of two.
const NUMBER_SEPARATOR = String.raw`(?<=\p{N})[.,](?=\p{N})`;
const TOKEN_PATTERN = new RegExp(
  `${WORD}(?:(?:${JOINING_APOSTROPHE}|${NUMBER_SEPARATOR})${WORD})*|(?<=[\\p{L}\\p{M}\\p{N}])'s(?![\\p{L}\\p{M}\\p{N}])`,
  'gu',
);

const tokenizer = new RegexpTokenizer({ pattern: TOKEN_PATTERN, gaps: false });

/**
 * Splits a plot overview into lower-case word tokens, in the spirit of Keras' default
 * `lower_and_strip_punctuation` standardisation but Unicode-aware:
 *
 * - Text is lower-cased and NFC-normalised; invisible format characters (soft hyphen, zero-width
 *   joiners) are removed, so "Fabergé" is "fabergé" whether its accent is precomposed or not.
 * - A token is a run of Unicode letters, combining marks and digits; all other characters
 *   (punctuation, quotes, symbols such as "$", whitespace) separate tokens and are dropped.
 * - Hyphens separate: "mother-in-law" → "mother", "in", "law" (rare compounds would otherwise be
 *   out of vocabulary while their parts are common words).
 * - Apostrophes (’ and ‘ count as ') inside a word are kept ("don't", "o'brien"), except a final
 *   "'s", which becomes its own token as in the Penn Treebank convention: "daughter's" →
 *   "daughter", "'s"; "he's" → "he", "'s". Leading and trailing quote marks are dropped
 *   ("'quoted'" → "quoted", "parents'" → "parents").
 * - Thousands separators are removed from numbers ("1,000" → "1000"); decimals stay whole ("3.5").
 */
export function tokenize(text: string): string[] {
  const normalized = text
    .toLowerCase()
    .normalize('NFC')
    .replace(/\p{Cf}/gu, '')
    .replace(/[\u2018\u2019\u02bc]/g, "'");
  const tokens = tokenizer.tokenize(normalized) ?? [];
  return tokens.map((token) => (/\p{N},\p{N}/u.test(token) ? token.replace(/(?<=\p{N}),(?=\p{N})/gu, '') : token));
}
