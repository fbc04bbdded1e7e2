import * as tf from '@tensorflow/tfjs';
import { pixelsToBatchTensor } from '@filmgenre/data-images';
import { encoderRuntimeLabel, resolveEncoderRuntime, type EncoderRuntimeRequest } from '@filmgenre/onnx-runtime';
import { activeBackend, MODEL_JSON, modelJsonOf, WEIGHTS_BIN } from '@filmgenre/tf-runtime';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { compileTrunk, layersConfig, type TrunkExecutor } from './trunk-plan.js';
import { onnxTrunk } from './trunk-onnx.js';
import { tfjsTrunk } from './trunk-tfjs.js';

/** Sub-directory of a model directory holding the frozen extractor graph (model.json + weights.bin). */
export const FEATURE_EXTRACTOR_DIR = 'feature-extractor';
/** Beside model.json in a saved extractor: the FeatureExtractorSpec (absent in directories written before it existed). */
export const FEATURE_EXTRACTOR_SPEC_JSON = 'extractor.json';

/**
 * The three trunks bundled in nsfwjs 4.3 (MIT), each an ImageNet network fine-tuned on five NSFW
 * classes. What is still ImageNet in each (GantMan/nsfw_model, which trained them):
 *
 * - `mobilenet_v2_mid`: TF-Hub `imagenet/mobilenet_v2_140_224` (width 1.4) as a graph model. Its
 *   training command (`training/train_all_models.cmd`) passes `--do_fine_tuning`, which trains the
 *   whole hub module: no layer is guaranteed ImageNet-pure. The graph is fused (conv + BN + ReLU6)
 *   and takes [0,1] input (it computes x·2 − 1 itself). Superseded as the default, it stays on
 *   tfjs's graph executor; only the Keras trunks are compiled (trunk-plan.ts).
 * - `mobilenet_v2`: Keras MobileNetV2 width 1.0 (a layers model). Its config marks the 98 layers up
 *   to `block_10_project_BN` `trainable: false` (the fine-tuning script unfreezes from
 *   `block_11_expand`): everything up to block 10 is ImageNet. Trained on [0,1] input, while the
 *   ImageNet weights expect [-1,1]; we feed [-1,1] by default (`inputRange`).
 * - `inception_v3`: Keras InceptionV3 (layers model), frozen up to `mixed5` (167 layers), ImageNet
 *   below that; same input-range remark. ≈ 0.5 s per 299×299 poster on wasm.
 */
export const FEATURE_TRUNKS = ['mobilenet_v2_mid', 'mobilenet_v2', 'inception_v3'] as const;
export type FeatureTrunk = (typeof FEATURE_TRUNKS)[number];
export const FEATURE_POOLINGS = ['mean', 'max'] as const;
export type FeaturePooling = (typeof FEATURE_POOLINGS)[number];
/** What the trunk's first layer receives: pixel/255, or pixel/127.5 − 1 (ImageNet's own scaling for these nets). */
export type FeatureInputRange = 'unit' | 'symmetric';

interface TrunkInfo {
  dir: string;
  shards: number;
  kind: 'graph' | 'layers';
  /** Downsampling factor: input sides must be multiples of it. */
  stride: number;
  /** Smallest side the trunk accepts (InceptionV3's valid convolutions). */
  minSide: number;
  /** The last ImageNet-pure layer, if the published training froze one. */
  imagenetPureUpTo?: string;
  source: string;
}

const TRUNKS: Record<FeatureTrunk, TrunkInfo> = {
  mobilenet_v2_mid: {
    dir: 'mobilenet_v2_mid', shards: 2, kind: 'graph', stride: 32, minSide: 32,
    source: 'nsfwjs 4.3 MobileNetV2Mid (TF-Hub MobileNetV2 1.4, ImageNet, fine-tuned whole on NSFW classes)',
  },
  // Stride 16: its ImageNet-pure part ends at block_10, 1/16 of the input; 112×224 is allowed.
  mobilenet_v2: {
    dir: 'mobilenet_v2', shards: 1, kind: 'layers', stride: 16, minSide: 32, imagenetPureUpTo: 'block_10_project_BN',
    source: 'nsfwjs 4.3 MobileNetV2 (Keras MobileNetV2 1.0, ImageNet; frozen up to block_10)',
  },
  inception_v3: {
    dir: 'inception_v3', shards: 6, kind: 'layers', stride: 1, minSide: 75, imagenetPureUpTo: 'mixed5',
    source: 'nsfwjs 4.3 InceptionV3 (Keras InceptionV3, ImageNet; frozen up to mixed5)',
  },
};

export interface FeatureExtractorSpec {
  trunk: FeatureTrunk;
  /**
   * Nodes whose outputs are pooled, in order. Graph trunk: a suffix of a node name, or an alias:
   * `Conv_1` (last 1×1 conv), `block_N` (block N's output), `block_N_expand` (its expansion ReLU6).
   * Layers trunks: a layer name (`block_10_project_BN`, `mixed5`), or `block_N` (MobileNetV2).
   */
  nodes: string[];
  /** Poolings applied to every node's output; features are [node1·pool1, node1·pool2, node2·pool1, …]. */
  pooling: FeaturePooling[];
  inputWidth: number;
  inputHeight: number;
  inputRange: FeatureInputRange;
}

export type FeatureExtractorSpecInput = Partial<FeatureExtractorSpec> & { inputSize?: number };

/**
 * The default poster features, chosen by cross-validation (docs/benchmarks/encoders.md): the
 * ImageNet-pure part of the Keras MobileNetV2-1.0, its block_10 expansion and output, mean- and
 * max-pooled (960-d), from posters at 128×256, their own 1:2 aspect, scaled to [-1,1].
 */
export const DEFAULT_FEATURE_SPEC: Readonly<FeatureExtractorSpec> = {
  trunk: 'mobilenet_v2', nodes: ['block_10_expand_relu', 'block_10'], pooling: ['mean', 'max'],
  inputWidth: 128, inputHeight: 256, inputRange: 'symmetric',
};

/** Where the trunk runs and on how many threads (onnxruntime's; tfjs uses its backend's own). */
export interface FeatureExtractorRuntimeOptions {
  /** Default: $FILMGENRE_ENCODER_RUNTIME, else onnxruntime where it loads, else tfjs. */
  runtime?: EncoderRuntimeRequest;
  /** Default: the tfjs backend's threads (the process's per-model setting: all cores when training, `--model-threads` when serving). */
  threads?: number;
}

export interface PosterFeatureExtractorInfo {
  source: string;
  licence: string;
  /** Side of the square input; for a non-square extractor, its height (see inputWidth/inputHeight). */
  inputSize: number;
  inputWidth: number;
  inputHeight: number;
  featureDim: number;
  nodes: string[];
  pooling: FeaturePooling[];
  /** What `extract` expects: float32 in [0,1]; how the trunk then scales it. */
  normalisation: string;
}

export interface ExtractorFiles {
  modelJson: tf.io.ModelJSON;
  weights: Uint8Array;
}

/** Fills defaults (DEFAULT_FEATURE_SPEC's, or another trunk's own nodes and range) and checks a spec; `inputSize` is shorthand for a square input. */
export function resolveFeatureSpec(input: FeatureExtractorSpecInput = {}): FeatureExtractorSpec {
  const trunk = input.trunk ?? DEFAULT_FEATURE_SPEC.trunk;
  if (!FEATURE_TRUNKS.includes(trunk)) throw new Error(`unknown trunk '${trunk}'; use one of ${FEATURE_TRUNKS.join(', ')}`);
  const info = TRUNKS[trunk];
  const spec: FeatureExtractorSpec = {
    trunk,
    nodes: input.nodes ?? (trunk === DEFAULT_FEATURE_SPEC.trunk ? [...DEFAULT_FEATURE_SPEC.nodes] : trunk === 'mobilenet_v2_mid' ? ['Conv_1'] : ['mixed5']),
    pooling: input.pooling ?? [...DEFAULT_FEATURE_SPEC.pooling],
    inputWidth: input.inputWidth ?? input.inputSize ?? DEFAULT_FEATURE_SPEC.inputWidth,
    inputHeight: input.inputHeight ?? input.inputSize ?? DEFAULT_FEATURE_SPEC.inputHeight,
    inputRange: input.inputRange ?? (info.kind === 'graph' ? 'unit' : 'symmetric'),
  };
  if (spec.nodes.length === 0) throw new Error('a feature extractor needs at least one node');
  if (spec.pooling.length === 0 || spec.pooling.some((p) => !FEATURE_POOLINGS.includes(p))) {
    throw new Error(`pooling must be a non-empty list of ${FEATURE_POOLINGS.join(', ')}, got ${JSON.stringify(spec.pooling)}`);
  }
  if (info.kind === 'graph' && spec.inputRange !== 'unit') throw new Error(`${trunk} scales its input itself: inputRange must be 'unit'`);
  for (const [name, value] of [['width', spec.inputWidth], ['height', spec.inputHeight]] as const) {
    // MobileNetV2 downsamples by 32; other sizes work but waste border pixels.
    if (!Number.isInteger(value) || value < info.minSide || value > 512 || value % info.stride !== 0) {
      throw new Error(info.stride > 1
        ? `feature extractor input ${name} must be a multiple of ${info.stride} in [${info.minSide}, 512], got ${value}`
        : `feature extractor input ${name} must be an integer in [${info.minSide}, 512], got ${value}`);
    }
  }
  return spec;
}

function nsfwjsModelsDir(): string {
  // nsfwjs' "exports" map hides dist/models; its main entry is dist/cjs/index.js, two levels below the root.
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('nsfwjs')), '..', 'models');
}

/** Reads a model bundled in nsfwjs as JS modules (base64 weights), fully offline. */
export function readNsfwjsFiles(trunk: FeatureTrunk): ExtractorFiles {
  const { dir: name, shards: count } = TRUNKS[trunk];
  const dir = join(nsfwjsModelsDir(), name);
  const require = createRequire(import.meta.url);
  const modelJson = require(join(dir, 'model.min.js')) as tf.io.ModelJSON;
  const shards: Buffer[] = [];
  for (let i = 1; i <= count; i++) {
    const base64 = require(join(dir, `group1-shard${i}of${count}.min.js`)) as unknown;
    if (typeof base64 !== 'string') throw new Error(`${dir}: weight shard ${i} is not a base64 string (nsfwjs layout changed?)`);
    shards.push(Buffer.from(base64, 'base64'));
  }
  // Deep copy so later patching never mutates the module cache.
  const copy = JSON.parse(JSON.stringify(modelJson)) as tf.io.ModelJSON;
  const weights = Buffer.concat(shards);
  return { modelJson: copy, weights: new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength) };
}

type GraphNode = { name: string; op: string; attr?: Record<string, unknown> };

/** The placeholder is declared [-1,224,224,3]; tfjs checks it, so free H and W to allow other inputs. */
function relaxGraphInputShape(modelJson: tf.io.ModelJSON): tf.io.ModelJSON {
  const copy = JSON.parse(JSON.stringify(modelJson)) as tf.io.ModelJSON;
  for (const node of (copy.modelTopology as { node: GraphNode[] }).node) {
    if (node.op !== 'Placeholder') continue;
    const dims = (node.attr?.shape as { shape?: { dim?: { size: string }[] } } | undefined)?.shape?.dim;
    if (dims?.length === 4) {
      dims[1]!.size = '-1';
      dims[2]!.size = '-1';
    }
  }
  return copy;
}

/** Full graph node name for a spec node (alias or suffix) of the MobileNetV2 graph. */
function graphNodeName(modelJson: tf.io.ModelJSON, wanted: string): string {
  const names = ((modelJson.modelTopology as { node?: GraphNode[] }).node ?? []).map((n) => n.name);
  const block = /^block_(\d+)(_expand)?$/.exec(wanted);
  const suffixes = wanted === 'Conv_1'
    ? ['/MobilenetV2/Conv_1/Relu6']
    : block
      ? block[2]
        ? [`/MobilenetV2/expanded_conv_${block[1]}/expand/Relu6`]
        : [`/MobilenetV2/expanded_conv_${block[1]}/add`, `/MobilenetV2/expanded_conv_${block[1]}/project/BatchNorm/FusedBatchNormV3`]
      : [`/${wanted.replace(/^\//, '')}`];
  for (const suffix of suffixes) {
    const name = names.find((n) => n.endsWith(suffix));
    if (name) return name;
  }
  throw new Error(`feature extractor graph has no node for '${wanted}' (looked for a name ending in ${suffixes.join(' or ')})`);
}

/** Layer name for a spec node of a layers trunk (`block_N` → its add, else its projection). */
function layerName(modelJson: tf.io.ModelJSON, wanted: string): string {
  const names = new Set(layersConfig(modelJson).layers.map((l) => l.name));
  const block = /^block_(\d+)$/.exec(wanted);
  const candidates = block ? [`block_${block[1]}_add`, `block_${block[1]}_project_BN`] : [wanted];
  const found = candidates.find((c) => names.has(c));
  if (!found) throw new Error(`feature extractor model has no layer '${wanted}'${block ? ` (looked for ${candidates.join(', ')})` : ''}`);
  return found;
}

/** The superseded graph trunk, on tfjs's graph executor (not compiled: see FEATURE_TRUNKS). */
async function graphTrunk(spec: FeatureExtractorSpec, files: ExtractorFiles, resolvedNodes: string[]): Promise<{ trunk: TrunkExecutor; nodeDims: number[] }> {
  const modelJson = relaxGraphInputShape(files.modelJson);
  const graph = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: modelJson.modelTopology, weightSpecs: (modelJson.weightsManifest ?? []).flatMap((g) => g.weights), weightData: files.weights.slice().buffer,
    format: modelJson.format, generatedBy: modelJson.generatedBy, convertedBy: modelJson.convertedBy,
  }));
  const size = { width: spec.inputWidth, height: spec.inputHeight };
  const execute = (x: tf.Tensor4D) => [graph.execute(x, resolvedNodes)].flat() as tf.Tensor4D[];
  const nodeDims = tf.tidy(() => execute(tf.zeros([1, spec.inputHeight, spec.inputWidth, 3])).map((t) => t.shape[3]));
  const trunk: TrunkExecutor = {
    runtime: encoderRuntimeLabel('tfjs', tf.getBackend()),
    async run(pixels, flip) {
      const features = tf.tidy(() => {
        const parts = execute(pixelsToBatchTensor(pixels, size, { flip })).flatMap((m) => spec.pooling.map((p) => (p === 'mean' ? tf.mean(m, [1, 2]) : tf.max(m, [1, 2]))));
        return parts.length === 1 ? parts[0]! : tf.concat(parts, 1);
      });
      try {
        return (await features.data()) as Float32Array;
      } finally {
        features.dispose();
      }
    },
    dispose: () => graph.dispose(),
  };
  return { trunk, nodeDims };
}

/**
 * Pretrained poster features: a frozen trunk from the nsfwjs package, the outputs of one or more of
 * its nodes pooled over space (mean and/or max) and concatenated; by default DEFAULT_FEATURE_SPEC.
 * A Keras trunk is compiled once, at load, into an inference plan (trunk-plan.ts) run on
 * onnxruntime where it loads, else on tfjs.
 */
export class PosterFeatureExtractor {
  private disposed = false;
  /**
   * sha256 (hex, 16) of the trunk's files and the spec: changes whenever the features could. Not of
   * the runtime: the compiled plan gives today's layers-model features within 1e-4 relative on both
   * runtimes (trunk-parity.test.ts), so feature caches written before it stay valid.
   */
  readonly identity: string;

  private constructor(
    private readonly trunk: TrunkExecutor,
    private readonly files: ExtractorFiles,
    readonly spec: FeatureExtractorSpec,
    readonly resolvedNodes: string[],
    /** Channels of each node's output, in spec order (each pooling contributes that many features). */
    readonly nodeDims: number[],
  ) {
    const hash = createHash('sha256').update(JSON.stringify(files.modelJson.modelTopology)).update(files.weights);
    this.identity = hash.update(JSON.stringify(spec)).digest('hex').slice(0, 16);
  }

  /** Any trunk, nodes, poolings and input size (see FeatureExtractorSpec; default DEFAULT_FEATURE_SPEC); loads from nsfwjs, offline. */
  static async create(input: FeatureExtractorSpecInput = {}, options: FeatureExtractorRuntimeOptions = {}): Promise<PosterFeatureExtractor> {
    const spec = resolveFeatureSpec(input);
    return PosterFeatureExtractor.fromFiles(readNsfwjsFiles(spec.trunk), spec, options);
  }

  /**
   * Loads a copy written by `save`, from a model directory's verified files: model-artifact's
   * modelArtifacts('feature-extractor') and the spec it stored in extractor.json.
   */
  static async fromArtifacts(artifacts: tf.io.ModelArtifacts, stored: FeatureExtractorSpecInput, options: FeatureExtractorRuntimeOptions = {}): Promise<PosterFeatureExtractor> {
    const data = artifacts.weightData;
    if (!data || Array.isArray(data)) throw new Error('feature extractor weights must be one buffer');
    return PosterFeatureExtractor.fromFiles({ modelJson: modelJsonOf(artifacts), weights: new Uint8Array(data) }, resolveFeatureSpec(stored), options);
  }

  private static async fromFiles(files: ExtractorFiles, spec: FeatureExtractorSpec, options: FeatureExtractorRuntimeOptions): Promise<PosterFeatureExtractor> {
    if (TRUNKS[spec.trunk].kind === 'graph') {
      const resolvedNodes = spec.nodes.map((n) => graphNodeName(files.modelJson, n));
      const { trunk, nodeDims } = await graphTrunk(spec, files, resolvedNodes);
      return new PosterFeatureExtractor(trunk, files, spec, resolvedNodes, nodeDims);
    }
    const resolvedNodes = spec.nodes.map((n) => layerName(files.modelJson, n));
    const scale = spec.inputRange === 'symmetric' ? { inputScale: 2, inputOffset: -1 } : { inputScale: 1, inputOffset: 0 };
    const plan = compileTrunk(files, { outputs: resolvedNodes, height: spec.inputHeight, width: spec.inputWidth, ...scale, pooling: spec.pooling });
    const runtime = resolveEncoderRuntime(options.runtime);
    const trunk = runtime === 'onnxruntime'
      ? await onnxTrunk(plan, { threads: options.threads ?? activeBackend()?.threads ?? availableParallelism() })
      : tfjsTrunk(plan);
    return new PosterFeatureExtractor(trunk, files, spec, resolvedNodes, plan.outputs.map((o) => o.channels));
  }

  /** Features per poster: the nodes' channels summed, times the number of poolings. */
  get featureDim(): number {
    return this.nodeDims.reduce((s, d) => s + d, 0) * this.spec.pooling.length;
  }

  /** Which runtime computes the features: `onnxruntime <version>` or `tfjs <backend>`. */
  get runtime(): string {
    return this.trunk.runtime;
  }

  get inputWidth(): number {
    return this.spec.inputWidth;
  }

  get inputHeight(): number {
    return this.spec.inputHeight;
  }

  /** Side of the square input. A non-square extractor has none: use inputWidth/inputHeight. */
  get inputSize(): number {
    if (this.spec.inputWidth !== this.spec.inputHeight) {
      throw new Error(`feature extractor input is ${this.spec.inputWidth}×${this.spec.inputHeight} (W×H), not square: use inputWidth/inputHeight`);
    }
    return this.spec.inputWidth;
  }

  get info(): PosterFeatureExtractorInfo {
    const { spec } = this;
    return {
      source: `${TRUNKS[spec.trunk].source}, ${spec.pooling.join('+')}-pooled ${spec.nodes.join(', ')}`,
      licence: 'MIT (nsfwjs); MobileNetV2 / InceptionV3 ImageNet weights Apache-2.0 (TensorFlow Hub / Keras Applications)',
      inputSize: spec.inputHeight,
      inputWidth: spec.inputWidth,
      inputHeight: spec.inputHeight,
      featureDim: this.featureDim,
      nodes: [...spec.nodes],
      pooling: [...spec.pooling],
      normalisation: TRUNKS[spec.trunk].kind === 'graph'
        ? 'RGB float32 in [0,1] (pixel/255); the graph maps to [-1,1]'
        : spec.inputRange === 'symmetric' ? 'RGB float32 in [0,1] (pixel/255); mapped to [-1,1] before the trunk' : 'RGB float32 in [0,1] (pixel/255), fed as is',
    };
  }

  /**
   * Features of n posters given as consecutive RGB uint8 HWC images of inputWidth × inputHeight
   * (data-images' decodePoster): n × featureDim float32, row-major. `flip` mirrors them left-right
   * first (the one augmentation that still applies when only a head is trained on frozen features).
   */
  async extract(pixels: Uint8Array, options: { flip?: boolean } = {}): Promise<Float32Array> {
    if (this.disposed) throw new Error('PosterFeatureExtractor has been disposed');
    const per = this.spec.inputWidth * this.spec.inputHeight * 3;
    if (pixels.length === 0 || pixels.length % per !== 0) {
      throw new RangeError(`feature extractor: ${pixels.length} bytes is not a whole number of ${this.spec.inputWidth}×${this.spec.inputHeight}×3 posters`);
    }
    return this.trunk.run(pixels, options.flip ?? false);
  }

  /** Writes model.json + weights.bin (the trunk as shipped) and extractor.json (the spec) into `dir`. */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    const modelJson: tf.io.ModelJSON = {
      ...this.files.modelJson,
      weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: (this.files.modelJson.weightsManifest ?? []).flatMap((g) => g.weights) }],
    };
    writeFileSync(join(dir, WEIGHTS_BIN), this.files.weights);
    writeFileSync(join(dir, MODEL_JSON), JSON.stringify(modelJson));
    writeFileSync(join(dir, FEATURE_EXTRACTOR_SPEC_JSON), `${JSON.stringify(this.spec, null, 2)}\n`);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.trunk.dispose();
  }
}
