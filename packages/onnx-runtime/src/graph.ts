import { ONNX_ELEMENT_TYPES, onnxModelType } from './onnx-proto.js';

/** Element types an inference graph here uses. */
export type OnnxElementType = keyof typeof ONNX_ELEMENT_TYPES;
/** A dimension: a size, or a symbolic name for one that varies (the batch). */
export type OnnxDim = number | string;

/** A node attribute, typed as ONNX types it (an integer and a float are different attributes). */
export type OnnxAttribute =
  | { int: number }
  | { float: number }
  | { ints: readonly number[] }
  | { floats: readonly number[] }
  | { string: string };

export type OnnxTensorData = Float32Array | Int32Array | BigInt64Array | Uint8Array;

interface Initializer {
  name: string;
  dims: number[];
  type: OnnxElementType;
  data: OnnxTensorData;
}

interface ValueInfo {
  name: string;
  type: OnnxElementType;
  dims: readonly OnnxDim[];
}

interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, OnnxAttribute>;
}

/** ONNX's opset whose operators the graphs use (LayerNormalization needs 17). */
export const ONNX_OPSET = 17;
/** The IR version that goes with it. */
const ONNX_IR_VERSION = 8;

function typeOf(data: OnnxTensorData): OnnxElementType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof BigInt64Array) return 'int64';
  return 'uint8';
}

/**
 * Builds an ONNX inference graph node by node, with weights as initializers, and encodes it as a
 * model (protobuf bytes) that onnxruntime loads from memory. Names are made unique; every method
 * returns the names of the values it defines, so graphs read as expressions.
 */
export class OnnxGraph {
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly initializers: Initializer[] = [];
  private readonly nodes: Node[] = [];
  private readonly names = new Set<string>();

  constructor(readonly name: string) {}

  private unique(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** Declares a graph input. */
  input(name: string, type: OnnxElementType, dims: readonly OnnxDim[]): string {
    if (this.names.has(name)) throw new Error(`ONNX graph ${this.name}: '${name}' is defined twice`);
    this.names.add(name);
    this.inputs.push({ name, type, dims });
    return name;
  }

  /** Marks `value` as a graph output named `name` (an Identity node renames it when the names differ). */
  output(value: string, name: string, type: OnnxElementType, dims: readonly OnnxDim[]): string {
    const out = value === name ? name : this.op('Identity', [value], {}, name)[0]!;
    this.outputs.push({ name: out, type, dims });
    return out;
  }

  /** A constant tensor (weights, shapes, scalars); `dims` [] for a scalar. */
  constant(name: string, data: OnnxTensorData, dims: readonly number[]): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (data.length !== count) throw new Error(`ONNX graph ${this.name}: constant '${name}' has ${data.length} values for dims [${dims.join(', ')}]`);
    const unique = this.unique(name);
    this.initializers.push({ name: unique, dims: [...dims], type: typeOf(data), data });
    return unique;
  }

  /** A float32 scalar constant. */
  scalar(name: string, value: number): string {
    return this.constant(name, Float32Array.of(value), []);
  }

  /** An int64 vector constant (shapes, axes, pads). */
  int64s(name: string, values: readonly number[]): string {
    return this.constant(name, BigInt64Array.from(values, (v) => BigInt(v)), [values.length]);
  }

  /**
   * Adds one operator; returns its outputs' names. `outputs` is how many it has (named after
   * `name`), or their names.
   */
  op(op: string, inputs: readonly string[], attributes: Record<string, OnnxAttribute> = {}, name: string = op, outputs: number | readonly string[] = 1): string[] {
    for (const input of inputs) {
      if (input !== '' && !this.names.has(input)) throw new Error(`ONNX graph ${this.name}: ${op} '${name}' reads '${input}', which nothing defines`);
    }
    const outs = typeof outputs === 'number'
      ? Array.from({ length: outputs }, (_, i) => this.unique(outputs === 1 ? name : `${name}:${i}`))
      : outputs.map((o) => this.unique(o));
    this.nodes.push({ op, inputs: [...inputs], outputs: outs, attributes });
    return outs;
  }

  /** One-output shorthand for `op`. */
  apply(op: string, inputs: readonly string[], attributes: Record<string, OnnxAttribute> = {}, name: string = op): string {
    return this.op(op, inputs, attributes, name)[0]!;
  }

  /** Operator counts by type (for tests and reports). */
  opCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const node of this.nodes) counts[node.op] = (counts[node.op] ?? 0) + 1;
    return counts;
  }

  /** The model as ONNX protobuf bytes. */
  encode(options: { producer?: string; docString?: string } = {}): Uint8Array {
    if (this.outputs.length === 0) throw new Error(`ONNX graph ${this.name} has no output`);
    const valueInfo = (v: ValueInfo) => ({
      name: v.name,
      type: { tensor_type: { elem_type: ONNX_ELEMENT_TYPES[v.type], shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
    });
    const model = {
      ir_version: ONNX_IR_VERSION,
      opset_import: [{ domain: '', version: ONNX_OPSET }],
      producer_name: options.producer ?? '@filmgenre/onnx-runtime',
      doc_string: options.docString ?? '',
      graph: {
        name: this.name,
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
        initializer: this.initializers.map((t) => ({
          name: t.name,
          dims: t.dims,
          data_type: ONNX_ELEMENT_TYPES[t.type],
          // ONNX's raw_data is little-endian, as typed arrays are on every platform Node runs on here.
          raw_data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
        })),
        node: this.nodes.map((n) => ({
          name: n.outputs[0],
          op_type: n.op,
          input: n.inputs,
          output: n.outputs,
          attribute: Object.entries(n.attributes).map(([name, value]) => attributeProto(name, value)),
        })),
      },
    };
    const type = onnxModelType();
    return type.encode(type.fromObject(model)).finish();
  }
}

function attributeProto(name: string, value: OnnxAttribute): Record<string, unknown> {
  if ('int' in value) return { name, type: 2, i: value.int };
  if ('float' in value) return { name, type: 1, f: value.float };
  if ('ints' in value) return { name, type: 7, ints: [...value.ints] };
  if ('floats' in value) return { name, type: 6, floats: [...value.floats] };
  return { name, type: 3, s: new TextEncoder().encode(value.string) };
}
