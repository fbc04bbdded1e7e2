export {
  decodePoster, probePoster, PosterError, POSTER_FORMATS, DECODER_VERSION,
  type DecodePosterOptions, type PosterProbe, type PosterFormat, type PosterErrorKind,
} from './decode.js';
export { pixelsToBatchTensor, type PosterShape, type BatchTensorOptions } from './tensor.js';
export type { AugmentOptions } from './augment.js';
export { loadPosterSet, type LoadPosterSetOptions, type PosterSet, type PosterSource, type PosterSetProgress, type BadPoster } from './load.js';
export { createPosterBatches, type PosterBatch, type PosterBatches, type PosterBatchOptions } from './batches.js';
export { posterThumbnailDataUri } from './thumbnail.js';
export { mapLimit } from './concurrency.js';
