import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** The model.json that describes `artifacts`, with all weights in one `weights.bin` beside it. */
export function modelJsonOf(artifacts: tf.io.ModelArtifacts): tf.io.ModelJSON {
  if (artifacts.modelTopology instanceof ArrayBuffer) throw new Error('binary model topologies are not supported');
  return {
    modelTopology: artifacts.modelTopology as object,
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
  };
}

/** The artifacts a model.json describes, its weight files read through `read` (by their path in the manifest). */
export function modelArtifactsOf(modelJson: tf.io.ModelJSON, read: (path: string) => Uint8Array): tf.io.ModelArtifacts {
  const buffers = (modelJson.weightsManifest ?? []).flatMap((group) => group.paths.map((path) => read(path.replace(/^\.\//, ''))));
  const weightData = new Uint8Array(buffers.reduce((n, b) => n + b.byteLength, 0));
  let offset = 0;
  for (const b of buffers) {
    weightData.set(b, offset);
    offset += b.byteLength;
  }
  return {
    modelTopology: modelJson.modelTopology,
    format: modelJson.format,
    generatedBy: modelJson.generatedBy,
    convertedBy: modelJson.convertedBy,
    trainingConfig: modelJson.trainingConfig,
    userDefinedMetadata: modelJson.userDefinedMetadata,
    weightSpecs: (modelJson.weightsManifest ?? []).flatMap((group) => group.weights),
    weightData: weightData.buffer,
  };
}

/**
 * A tfjs IOHandler that writes and reads the standard `model.json` + weights format in a local
 * directory with plain `fs`, so it works on every backend (tfjs-node's `file://` handler exists only
 * where tfjs-node is installed) and a model saved under one backend loads under another.
 */
export function fileSystemIO(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const modelJson = modelJsonOf(artifacts);
      const weightData = artifacts.weightData
        ? new Uint8Array(tf.io.concatenateArrayBuffers(Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData]))
        : new Uint8Array(0);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, WEIGHTS_BIN), weightData);
      writeFileSync(join(dir, MODEL_JSON), JSON.stringify(modelJson));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weightData.byteLength } };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonPath = join(dir, MODEL_JSON);
      if (!existsSync(jsonPath)) throw new Error(`${jsonPath}: model file not found`);
      const modelJson = JSON.parse(readFileSync(jsonPath, 'utf8')) as tf.io.ModelJSON;
      return modelArtifactsOf(modelJson, (path) => {
        const weightsPath = join(dir, path);
        if (!existsSync(weightsPath)) throw new Error(`${weightsPath}: weights file not found (listed in ${jsonPath})`);
        return readFileSync(weightsPath);
      });
    },
  };
}
