export { GENRES, NUM_GENRES, genresOf, type Genre } from './genres.js';
export { createRng, shuffleInPlace, hashString, seedMathRandom, type Rng, type StatefulRng } from './random.js';
export {
  holdoutSplit, foldPlan, foldOf, splitMismatch, partitionMismatch,
  type Split, type FoldOptions, type HoldoutSplit, type FoldPlan, type SplitRecord,
} from './split.js';
export {
  readDataset, formatBadRows, resolveDatasetDir, findDatasetDir, findWorkspaceRoot, DatasetError, DATASET_ENV, CSV_FILE, IMAGES_DIR,
  type Dataset, type Film, type BadRow, type DatasetSummary, type ReadDatasetOptions,
} from './dataset.js';
export { writeFileAtomic, replaceDirAtomic, assertWritableDir } from './fs.js';
export { yieldToEventLoop } from './event-loop.js';
export { canonicalJson } from './canonical-json.js';
export { defaultCacheRoot } from './cache.js';
export {
  cliOptionsOf, parseCliOptions, readFlags, readCommandLine, parseCommandLine, exitOnCommandLineError, exitForCommandLineError, CommandLineError, DatasetOptionsSchema, FoldOptionsSchema, kebabCase, camelCase, type CliOption, type CliSection,
} from './cli.js';
export { VectorCache, vectorCacheKey, type VectorCacheOptions } from './vector-cache.js';
export { foldRows, pickRows, placeRows } from './rows.js';
