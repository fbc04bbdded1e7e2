export {
  decodePoster, probePoster, sniffFormat, PosterError, DEFAULT_POSTER_SIZE, DEFAULT_LIMIT_INPUT_PIXELS, MAX_POSTER_SIZE,
  POSTER_FORMATS, DECODER_VERSION, type DecodePosterOptions, type PosterProbe, type PosterFormat, type PosterErrorKind,
} from './decode.js';
export { pixelsToBatchTensor, type PosterShape, type BatchTensorOptions } from './tensor.js';
export {
  AugmentOptionsSchema, resolveAugment, augmentInto, exampleRng, UINT8_TO_UNIT, type AugmentOptions, type ResolvedAugment,
} from './augment.js';
export { defaultCacheDir, posterCacheKey, openPosterCache, CACHE_LAYOUTS, type CacheLayout, type PosterKey, type PosterCacheStore } from './cache.js';
export {
  loadPosterSet, type LoadPosterSetOptions, type PosterSet, type PosterSource, type PosterSetProgress, type BadPoster,
} from './load.js';
export {
  createPosterBatches, streamPosterBatches, epochOrder, type PosterBatch, type PosterBatches, type PosterBatchOptions,
  type StreamPosterBatchesOptions,
} from './batches.js';
export { posterThumbnailDataUri } from './thumbnail.js';
export { mapLimit } from './concurrency.js';
