import * as tf from '@tensorflow/tfjs';
import { MODEL_JSON, modelJsonOf, WEIGHTS_BIN } from '@filmgenre/tf-runtime';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

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
 *   and takes [0,1] input (it computes x·2 − 1 itself).
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

export const DEFAULT_FEATURE_INPUT_SIZE = 160;
export const PRETRAINED_FEATURE_DIM = 1792;
/** Today's default: pooled `Conv_1` of the 1.4-width graph at 160×160 (1792-d). */
export const DEFAULT_FEATURE_SPEC: FeatureExtractorSpec = {
  trunk: 'mobilenet_v2_mid', nodes: ['Conv_1'], pooling: ['mean'],
  inputWidth: DEFAULT_FEATURE_INPUT_SIZE, inputHeight: DEFAULT_FEATURE_INPUT_SIZE, inputRange: 'unit',
};

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

interface ExtractorFiles {
  modelJson: tf.io.ModelJSON;
  weights: Uint8Array;
}

/** Fills defaults and checks a spec; `inputSize` is shorthand for a square input. */
export function resolveFeatureSpec(input: FeatureExtractorSpecInput = {}): FeatureExtractorSpec {
  const trunk = input.trunk ?? DEFAULT_FEATURE_SPEC.trunk;
  if (!FEATURE_TRUNKS.includes(trunk)) throw new Error(`unknown trunk '${trunk}'; use one of ${FEATURE_TRUNKS.join(', ')}`);
  const info = TRUNKS[trunk];
  const side = input.inputSize ?? DEFAULT_FEATURE_INPUT_SIZE;
  const spec: FeatureExtractorSpec = {
    trunk,
    nodes: input.nodes ?? (trunk === 'mobilenet_v2_mid' ? ['Conv_1'] : trunk === 'mobilenet_v2' ? ['block_10'] : ['mixed5']),
    pooling: input.pooling ?? ['mean'],
    inputWidth: input.inputWidth ?? side,
    inputHeight: input.inputHeight ?? side,
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
function readNsfwjsFiles(trunk: FeatureTrunk): ExtractorFiles {
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

interface LayerConfig { name: string; class_name: string; inbound_nodes: unknown[]; config: Record<string, unknown> }
interface FunctionalConfig { layers: LayerConfig[]; input_layers: unknown[]; output_layers: unknown[]; name?: string }

function layersConfig(modelJson: tf.io.ModelJSON): FunctionalConfig {
  const topology = modelJson.modelTopology as { model_config?: { config: FunctionalConfig } };
  const config = topology.model_config?.config;
  if (!config?.layers) throw new Error('not a Keras functional model topology');
  return config;
}

/** Layer name for a spec node of a layers trunk (`block_N` → its add, else its projection). */
function layerName(config: FunctionalConfig, wanted: string): string {
  const names = new Set(config.layers.map((l) => l.name));
  const block = /^block_(\d+)$/.exec(wanted);
  const candidates = block ? [`block_${block[1]}_add`, `block_${block[1]}_project_BN`] : [wanted];
  const found = candidates.find((c) => names.has(c));
  if (!found) throw new Error(`feature extractor model has no layer '${wanted}'${block ? ` (looked for ${candidates.join(', ')})` : ''}`);
  return found;
}

/** Names of the layers the given outputs depend on (walks inbound_nodes back to the input). */
function ancestors(config: FunctionalConfig, outputs: readonly string[]): Set<string> {
  const byName = new Map(config.layers.map((l) => [l.name, l]));
  const seen = new Set<string>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const layer = byName.get(name);
    if (!layer) throw new Error(`layer '${name}' referenced but not defined`);
    for (const node of layer.inbound_nodes as unknown[][][]) for (const inbound of node) stack.push(inbound[0] as string);
  }
  return seen;
}

/**
 * A layers-model topology cut down to the layers the wanted outputs need, with those as outputs and
 * the input's height and width freed (the classifier head, fixed to 224 or 299, is dropped).
 */
function truncateLayersModel(modelJson: tf.io.ModelJSON, outputs: readonly string[]): tf.io.ModelJSON {
  const copy = JSON.parse(JSON.stringify(modelJson)) as tf.io.ModelJSON;
  const config = layersConfig(copy);
  const keep = ancestors(config, outputs);
  config.layers = config.layers.filter((l) => keep.has(l.name));
  config.output_layers = outputs.map((name) => [name, 0, 0]);
  for (const layer of config.layers) {
    if (layer.class_name === 'InputLayer') {
      const shape = layer.config.batch_input_shape as (number | null)[];
      layer.config.batch_input_shape = [null, null, null, shape[3] ?? 3];
    }
  }
  return copy;
}

interface LoadedTrunk {
  run: (x: tf.Tensor4D) => tf.Tensor4D[];
  dispose: () => void;
}

async function loadTrunk(spec: FeatureExtractorSpec, files: ExtractorFiles): Promise<{ trunk: LoadedTrunk; resolvedNodes: string[] }> {
  const weightSpecs = (files.modelJson.weightsManifest ?? []).flatMap((g) => g.weights);
  const weightData = files.weights.slice().buffer;
  if (TRUNKS[spec.trunk].kind === 'graph') {
    const modelJson = relaxGraphInputShape(files.modelJson);
    const resolvedNodes = spec.nodes.map((n) => graphNodeName(modelJson, n));
    const graph = await tf.loadGraphModel(tf.io.fromMemory({
      modelTopology: modelJson.modelTopology, weightSpecs, weightData,
      format: modelJson.format, generatedBy: modelJson.generatedBy, convertedBy: modelJson.convertedBy,
    }));
    return {
      resolvedNodes,
      trunk: {
        run: (x) => {
          const out = graph.execute(x, resolvedNodes);
          return (Array.isArray(out) ? out : [out]) as tf.Tensor4D[];
        },
        dispose: () => graph.dispose(),
      },
    };
  }
  const resolvedNodes = spec.nodes.map((n) => layerName(layersConfig(files.modelJson), n));
  const truncated = truncateLayersModel(files.modelJson, [...new Set(resolvedNodes)]);
  // The cut model has fewer layers than the weight manifest: strict: false ignores the others.
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: truncated.modelTopology, weightSpecs, weightData }), { strict: false });
  const outputIndex = new Map([...new Set(resolvedNodes)].map((name, i) => [name, i]));
  return {
    resolvedNodes,
    trunk: {
      run: (x) => {
        const out = model.apply(x, { training: false }) as tf.Tensor4D | tf.Tensor4D[];
        const list = Array.isArray(out) ? out : [out];
        return resolvedNodes.map((name) => list[outputIndex.get(name)!]!);
      },
      dispose: () => model.dispose(),
    },
  };
}

/**
 * Pretrained poster features: a frozen trunk from the nsfwjs package, the outputs of one or more of
 * its nodes pooled over space (mean and/or max) and concatenated. The default (`fromNsfwjs()`) is the
 * 1792-d mean-pooled `Conv_1` of the 1.4-width MobileNetV2 graph at 160×160.
 */
export class PosterFeatureExtractor {
  private disposed = false;
  /** Features per poster: the nodes' channels summed, times the number of poolings. */
  readonly featureDim: number;
  /** sha256 (hex, 16) of the trunk's files and the spec: changes whenever the features could. */
  readonly identity: string;

  private constructor(
    private readonly trunk: LoadedTrunk,
    private readonly files: ExtractorFiles,
    readonly spec: FeatureExtractorSpec,
    readonly resolvedNodes: string[],
    /** Channels of each node's output, in spec order (each pooling contributes that many features). */
    readonly nodeDims: number[],
  ) {
    this.featureDim = nodeDims.reduce((s, d) => s + d, 0) * spec.pooling.length;
    const hash = createHash('sha256').update(JSON.stringify(files.modelJson.modelTopology)).update(files.weights);
    this.identity = hash.update(JSON.stringify(spec)).digest('hex').slice(0, 16);
  }

  /** Loads the default trunk bundled in the installed nsfwjs package (no network), as before. */
  static async fromNsfwjs(options: { inputSize?: number } = {}): Promise<PosterFeatureExtractor> {
    return PosterFeatureExtractor.create({ ...DEFAULT_FEATURE_SPEC, ...(options.inputSize ? { inputWidth: options.inputSize, inputHeight: options.inputSize } : {}) });
  }

  /** Any trunk, nodes, poolings and input size (see FeatureExtractorSpec); loads from nsfwjs, offline. */
  static async create(input: FeatureExtractorSpecInput = {}): Promise<PosterFeatureExtractor> {
    const spec = resolveFeatureSpec(input);
    return PosterFeatureExtractor.fromFiles(readNsfwjsFiles(spec.trunk), spec);
  }

  /**
   * Loads a copy written by `save`, from a model directory's verified files: model-artifact's
   * modelArtifacts('feature-extractor') and the spec it stored in extractor.json.
   */
  static async fromArtifacts(artifacts: tf.io.ModelArtifacts, stored: FeatureExtractorSpecInput): Promise<PosterFeatureExtractor> {
    const data = artifacts.weightData;
    if (!data || Array.isArray(data)) throw new Error('feature extractor weights must be one buffer');
    return PosterFeatureExtractor.fromFiles({ modelJson: modelJsonOf(artifacts), weights: new Uint8Array(data) }, resolveFeatureSpec(stored));
  }

  private static async fromFiles(files: ExtractorFiles, spec: FeatureExtractorSpec): Promise<PosterFeatureExtractor> {
    const { trunk, resolvedNodes } = await loadTrunk(spec, files);
    const dims = tf.tidy(() => trunk.run(tf.zeros([1, spec.inputHeight, spec.inputWidth, 3])).map((t) => t.shape[3]));
    const extractor = new PosterFeatureExtractor(trunk, files, spec, resolvedNodes, dims);
    const featureDim = extractor.featureDim;
    const isDefault = JSON.stringify({ ...spec, inputWidth: 0, inputHeight: 0 }) === JSON.stringify({ ...DEFAULT_FEATURE_SPEC, inputWidth: 0, inputHeight: 0 });
    if (isDefault && featureDim !== PRETRAINED_FEATURE_DIM) {
      trunk.dispose();
      throw new Error(`feature extractor produced ${featureDim}-d features, expected ${PRETRAINED_FEATURE_DIM}`);
    }
    return extractor;
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
    const pooled = `${spec.pooling.join('+')}-pooled ${spec.nodes.join(', ')}`;
    return {
      source: spec.trunk === 'mobilenet_v2_mid' && spec.nodes.join() === 'Conv_1' && spec.pooling.join() === 'mean'
        ? 'nsfwjs 4.3 MobileNetV2Mid (TF-Hub MobileNetV2 1.4, ImageNet), pooled Conv_1/Relu6'
        : `${TRUNKS[spec.trunk].source}, ${pooled}`,
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
   * images: [n,h,w,3] float32 in [0,1], h × w = inputHeight × inputWidth. Returns [n, featureDim];
   * synchronous so callers can tf.tidy it. `flip` mirrors the images left-right first (the one
   * augmentation that still applies when only a head is trained on frozen features).
   */
  extract(images: tf.Tensor4D, options: { flip?: boolean } = {}): tf.Tensor2D {
    if (this.disposed) throw new Error('PosterFeatureExtractor has been disposed');
    return tf.tidy(() => {
      let x = options.flip ? (tf.reverse(images, 2) as tf.Tensor4D) : images;
      if (this.spec.inputRange === 'symmetric' && TRUNKS[this.spec.trunk].kind === 'layers') x = tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D;
      const parts: tf.Tensor2D[] = [];
      for (const fmap of this.trunk.run(x)) {
        for (const pooling of this.spec.pooling) parts.push((pooling === 'mean' ? tf.mean(fmap, [1, 2]) : tf.max(fmap, [1, 2])) as tf.Tensor2D);
      }
      return parts.length === 1 ? parts[0]! : (tf.concat(parts, 1) as tf.Tensor2D);
    });
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
