/** A model directory that cannot be used as it is; the message names the file and the field. */
export class ModelDirError extends Error {
  override name = 'ModelDirError';
}
