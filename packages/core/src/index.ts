export { GENRES, NUM_GENRES, genresOf, type Genre } from './genres.js';
export { createRng, shuffleInPlace, hashString, seedMathRandom, type Rng } from './random.js';
export { splitTrainValidation, type Split, type SplitOptions } from './split.js';
export {
  readDataset, formatBadRows, resolveDatasetDir, findWorkspaceRoot, DatasetError, DATASET_ENV, CSV_FILE, IMAGES_DIR,
  type Dataset, type Film, type BadRow, type DatasetSummary, type ReadDatasetOptions,
} from './dataset.js';
export { VectorCache, vectorCacheKey, type VectorCacheOptions } from './vector-cache.js';
