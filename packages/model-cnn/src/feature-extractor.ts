import * as tf from '@tensorflow/tfjs';
import { MODEL_JSON, modelJsonOf, WEIGHTS_BIN } from '@filmgenre/tf-runtime';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** Sub-directory of a model directory holding the frozen extractor graph (model.json + weights.bin). */
export const FEATURE_EXTRACTOR_DIR = 'feature-extractor';

/**
 * The bundled nsfwjs "MobileNetV2Mid" model: a TF-Hub MobileNetV2 (width 1.4, ImageNet) feature-vector
 * module with a 5-way NSFW head on top. We only use the trunk; its pooled output is 1792-d.
 */
const NSFWJS_MODEL = 'mobilenet_v2_mid';
const NSFWJS_SHARDS = 2;
/** Last activation before the graph's fixed 7×7 AvgPool; we pool it ourselves so any input size works. */
const TRUNK_NODE_SUFFIX = '/MobilenetV2/Conv_1/Relu6';
export const DEFAULT_FEATURE_INPUT_SIZE = 160;
export const PRETRAINED_FEATURE_DIM = 1792;

export interface PosterFeatureExtractorInfo {
  source: string;
  licence: string;
  /** Side of the square RGB input the features were designed / benchmarked for. */
  inputSize: number;
  featureDim: number;
  /** What `extract` expects: float32 in [0,1]; the graph itself maps to [-1,1] (x·2 − 1). */
  normalisation: string;
}

interface ExtractorFiles {
  modelJson: tf.io.ModelJSON;
  weights: Uint8Array;
}

function nsfwjsModelsDir(): string {
  // nsfwjs' "exports" map hides dist/models; its main entry is dist/cjs/index.js, two levels below the root.
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('nsfwjs')), '..', 'models', NSFWJS_MODEL);
}

/** Reads the graph bundled in nsfwjs as JS modules (base64 weights), fully offline. */
function readNsfwjsFiles(): ExtractorFiles {
  const dir = nsfwjsModelsDir();
  const require = createRequire(import.meta.url);
  const modelJson = require(join(dir, 'model.min.js')) as tf.io.ModelJSON;
  const shards: Buffer[] = [];
  for (let i = 1; i <= NSFWJS_SHARDS; i++) {
    const base64 = require(join(dir, `group1-shard${i}of${NSFWJS_SHARDS}.min.js`)) as unknown;
    if (typeof base64 !== 'string') throw new Error(`${dir}: weight shard ${i} is not a base64 string (nsfwjs layout changed?)`);
    shards.push(Buffer.from(base64, 'base64'));
  }
  // Deep copy so patching the input shape never mutates the module cache.
  const copy = JSON.parse(JSON.stringify(modelJson)) as tf.io.ModelJSON;
  const weights = Buffer.concat(shards);
  return { modelJson: relaxInputShape(copy), weights: new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength) };
}

/** The placeholder is declared [-1,224,224,3]; tfjs checks it, so free H and W to allow smaller inputs. */
function relaxInputShape(modelJson: tf.io.ModelJSON): tf.io.ModelJSON {
  const nodes = (modelJson.modelTopology as { node: { op: string; attr?: Record<string, unknown> }[] }).node;
  for (const node of nodes) {
    if (node.op !== 'Placeholder') continue;
    const dims = (node.attr?.shape as { shape?: { dim?: { size: string }[] } } | undefined)?.shape?.dim;
    if (dims?.length === 4) {
      dims[1]!.size = '-1';
      dims[2]!.size = '-1';
    }
  }
  return modelJson;
}

function trunkNodeName(modelJson: tf.io.ModelJSON): string {
  const nodes = (modelJson.modelTopology as { node?: { name: string }[] }).node ?? [];
  const node = nodes.find((n) => n.name.endsWith(TRUNK_NODE_SUFFIX));
  if (!node) throw new Error(`feature extractor graph has no node ending in '${TRUNK_NODE_SUFFIX}'`);
  return node.name;
}

/**
 * Pretrained poster features: MobileNetV2-1.4 (ImageNet) from the nsfwjs package, global-average-pooled
 * 1792-d output of its last 1×1 convolution. Frozen; used as a fixed featuriser.
 */
export class PosterFeatureExtractor {
  readonly featureDim = PRETRAINED_FEATURE_DIM;
  private disposed = false;

  private constructor(
    private readonly graph: tf.GraphModel,
    private readonly files: ExtractorFiles,
    private readonly outputNode: string,
    readonly inputSize: number,
  ) {}

  /** Loads the graph bundled in the installed nsfwjs package (no network). */
  static async fromNsfwjs(options: { inputSize?: number } = {}): Promise<PosterFeatureExtractor> {
    const inputSize = options.inputSize ?? DEFAULT_FEATURE_INPUT_SIZE;
    validateInputSize(inputSize);
    const files = readNsfwjsFiles();
    return PosterFeatureExtractor.fromFiles(files, inputSize);
  }

  /** Loads a copy written by `save`, from a model directory's verified files (model-artifact's modelArtifacts). */
  static async fromArtifacts(artifacts: tf.io.ModelArtifacts, inputSize: number): Promise<PosterFeatureExtractor> {
    validateInputSize(inputSize);
    const modelJson = modelJsonOf(artifacts);
    const data = artifacts.weightData;
    if (!data || Array.isArray(data)) throw new Error('feature extractor weights must be one buffer');
    return PosterFeatureExtractor.fromFiles({ modelJson, weights: new Uint8Array(data) }, inputSize);
  }

  private static async fromFiles(files: ExtractorFiles, inputSize: number): Promise<PosterFeatureExtractor> {
    const outputNode = trunkNodeName(files.modelJson);
    const weightSpecs = (files.modelJson.weightsManifest ?? []).flatMap((g) => g.weights);
    const weightData = files.weights.slice().buffer;
    const graph = await tf.loadGraphModel(tf.io.fromMemory({
      modelTopology: files.modelJson.modelTopology,
      weightSpecs,
      weightData,
      format: files.modelJson.format,
      generatedBy: files.modelJson.generatedBy,
      convertedBy: files.modelJson.convertedBy,
    }));
    const extractor = new PosterFeatureExtractor(graph, files, outputNode, inputSize);
    const probe = extractor.extract(tf.zeros([1, inputSize, inputSize, 3]));
    const dim = probe.shape[1];
    probe.dispose();
    if (dim !== PRETRAINED_FEATURE_DIM) {
      graph.dispose();
      throw new Error(`feature extractor produced ${dim}-d features, expected ${PRETRAINED_FEATURE_DIM}`);
    }
    return extractor;
  }

  get info(): PosterFeatureExtractorInfo {
    return {
      source: 'nsfwjs 4.3 MobileNetV2Mid (TF-Hub MobileNetV2 1.4, ImageNet), pooled Conv_1/Relu6',
      licence: 'MIT (nsfwjs); MobileNetV2 weights Apache-2.0 (TensorFlow Hub)',
      inputSize: this.inputSize,
      featureDim: this.featureDim,
      normalisation: 'RGB float32 in [0,1] (pixel/255); the graph maps to [-1,1]',
    };
  }

  /** images: [n,h,w,3] float32 in [0,1]. Returns [n,1792]; synchronous so callers can tf.tidy it. */
  extract(images: tf.Tensor4D): tf.Tensor2D {
    if (this.disposed) throw new Error('PosterFeatureExtractor has been disposed');
    return tf.tidy(() => {
      const fmap = this.graph.execute(images, this.outputNode) as tf.Tensor4D;
      return tf.mean(fmap, [1, 2]) as tf.Tensor2D;
    });
  }

  /** Writes model.json + weights.bin into `dir` (created if missing). */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    const modelJson: tf.io.ModelJSON = {
      ...this.files.modelJson,
      weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: (this.files.modelJson.weightsManifest ?? []).flatMap((g) => g.weights) }],
    };
    writeFileSync(join(dir, WEIGHTS_BIN), this.files.weights);
    writeFileSync(join(dir, MODEL_JSON), JSON.stringify(modelJson));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.graph.dispose();
  }
}

function validateInputSize(size: number): void {
  // MobileNetV2 downsamples by 32; other sizes work but waste border pixels.
  if (!Number.isInteger(size) || size < 32 || size > 512 || size % 32 !== 0) {
    throw new Error(`feature extractor input size must be a multiple of 32 in [32, 512], got ${size}`);
  }
}
