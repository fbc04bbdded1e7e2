export { buildTinyModels, buildSentenceModels, heldOutFilms, TEST_IMAGE_SIZE, TEST_POSTER_WIDTH, TEST_POSTER_HEIGHT, TEST_SEQUENCE_LENGTH } from './fixture.js';
export { blackPng, manyFrameGif, scanBombJpeg, quantile } from './crafted.js';
