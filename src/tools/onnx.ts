// Exports a ResNet as an ONNX model (opset 17, IR version 8) written from the trace of its
// eval-mode pass (the one its inference plan is built from): each op becomes ONNX nodes, with
// torch's module paths as node and value names, so the graph reads like `resnet summary --depth 3`. The input is
// float32 (N, 3, H, W) with N, H and W symbolic; the output is (N, numClasses) logits.
// Eval-mode semantics: BatchNorm uses its running statistics, folded into the convolution
// before it by default (the inference plan's folding, plan/fold.ts), or kept as BatchNormalization.
//
// Encoded with protobufjs from the subset of onnx.proto below (field numbers as in
// https://github.com/onnx/onnx/blob/main/onnx/onnx.proto; fields we never write are left out).

import protobuf from 'protobufjs';
import { Tensor } from '../core/tensor.js';
import type { BatchNormArgs, Trace, TracedOp } from '../ops/trace.js';
import { foldedWeights } from '../plan/index.js';
import { traceEval, type Module } from '../nn/module.js';
import type { AnyResNet } from '../models/builders.js';
import { encodeLittleEndian } from '../io/elements.js';

const ONNX_PROTO = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; }
  optional string name = 1;
  optional AttributeType type = 20;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  repeated float floats = 7;
  repeated int64 ints = 8;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  optional string domain = 7;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
}

message ModelProto {
  optional int64 ir_version = 1;
  repeated OperatorSetIdProto opset_import = 8;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated StringStringEntryProto metadata_props = 14;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message TensorProto {
  enum DataType { UNDEFINED = 0; FLOAT = 1; INT64 = 7; }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional string doc_string = 12;
  optional bytes raw_data = 9;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    optional string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  optional string denotation = 6;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}
`;

/** The opset every node is written for; onnxruntime ≥ 1.13 runs it. */
export const ONNX_OPSET = 17;
/** IR version 8 is the one that goes with opset 17. */
const IR_VERSION = 8;
const FLOAT = 1; // TensorProto.DataType.FLOAT
const INT64 = 7; // TensorProto.DataType.INT64

let modelProtoType: protobuf.Type | undefined;

function modelProto(): protobuf.Type {
  modelProtoType ??= protobuf.parse(ONNX_PROTO, { keepCase: true }).root.lookupType('onnx.ModelProto');
  return modelProtoType;
}

/** An attribute value: an integer (INT), a list of integers (INTS) or { float } (FLOAT). */
type AttributeValue = number | readonly number[] | { float: number };

interface NodeSpec {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute: object[];
}

function attribute(name: string, value: AttributeValue): object {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new RangeError(`attribute ${name}: ${value} is not an integer`);
    return { name, type: 'INT', i: value };
  }
  if ('float' in value) return { name, type: 'FLOAT', f: value.float };
  return { name, type: 'INTS', ints: [...value] };
}

/** Nodes and initializers in topological order, each value named after the module that makes it. */
class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: object[] = [];
  private readonly used = new Set<string>();

  constructor(reserved: string[]) {
    for (const name of reserved) this.used.add(name);
  }

  /** `name`, or `name_1`, `name_2`, … for modules that run more than once (a block's ReLU). */
  unique(name: string): string {
    let candidate = name;
    for (let i = 1; this.used.has(candidate); i++) candidate = `${name}_${i}`;
    this.used.add(candidate);
    return candidate;
  }

  initializer(name: string, tensor: Tensor | Float32Array, shape?: readonly number[]): string {
    const unique = this.unique(name);
    const data = tensor instanceof Float32Array ? tensor : tensor.data;
    const dataType = data instanceof BigInt64Array ? INT64 : FLOAT;
    this.initializers.push({ name: unique, dims: [...(shape ?? (tensor as Tensor).shape)], data_type: dataType, raw_data: encodeLittleEndian(data) });
    return unique;
  }

  /** A 1-D int64 initializer (the index arguments of Slice and Pad). */
  int64s(name: string, values: readonly number[]): string {
    return this.initializer(name, new Tensor(BigInt64Array.from(values, (v) => BigInt(v)), [values.length]));
  }

  /** Adds a node named `name` (made unique) whose one output has the same name; returns it. */
  node(opType: string, name: string, inputs: string[], attributes: Record<string, AttributeValue> = {}): string {
    const unique = this.unique(name);
    this.nodes.push({
      name: unique,
      op_type: opType,
      input: inputs,
      output: [unique],
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
    return unique;
  }
}

export interface OnnxExportOptions {
  /**
   * true (default): fold each BatchNorm into the convolution before it, so the graph is
   * Conv → Relu → … with a bias on every Conv. false: keep BatchNormalization nodes.
   */
  foldBatchNorm?: boolean;
  /** The graph's name; 'resnet' by default. */
  graphName?: string;
  /** String key–value pairs stored as the model's metadata_props (e.g. the architecture). */
  metadata?: Readonly<Record<string, string>>;
}

const join = (prefix: string, name: string): string => (prefix ? `${prefix}.${name}` : name);

type ConvOp = TracedOp & { kind: 'conv2d' };

/**
 * Writes the ONNX nodes of a traced eval-mode pass (nn/module.ts traceEval, the trace the
 * inference plan is built from), one op at a time, each named after the module that runs it:
 * a leaf module's path ('layer1.0.conv1'), or for an op a module runs itself, its path and the
 * op ('layer1.0.add', 'flatten'). A convolution whose output only a BatchNorm reads is written
 * with that BatchNorm folded in, when folding.
 */
class OnnxWriter {
  /** Value names by the meta tensors of the trace. */
  private readonly values = new Map<Tensor, string>();

  constructor(private readonly graph: GraphBuilder, private readonly fold: boolean) {}

  /** Writes the pass; returns the name of its output value. */
  write(model: Module, traced: Trace, input: string): string {
    const names = new Map<object, { path: string; leaf: boolean }>();
    for (const [path, m] of model.namedModules()) names.set(m, { path, leaf: m.namedChildren().next().done === true });
    // A convolution whose output is read by one op only, a BatchNorm that folds: written as one
    // Conv where the BatchNorm ran.
    const reads = new Map<Tensor, TracedOp[]>();
    for (const e of traced.events) {
      if (e.kind === 'enter' || e.kind === 'exit') continue;
      for (const t of e.kind === 'add' ? [e.a, e.b] : [e.x]) reads.set(t, [...(reads.get(t) ?? []), e]);
    }
    const foldInto = new Map<TracedOp, { conv: ConvOp; name: string }>();
    this.values.set(traced.input, input);
    const calls: object[] = [];
    for (const e of traced.events) {
      if (e.kind === 'enter') calls.push(e.scope);
      else if (e.kind === 'exit') calls.pop();
      else {
        const scope = names.get(calls.at(-1)!) ?? { path: '', leaf: false };
        const name = scope.leaf ? scope.path : join(scope.path, e.kind === 'add' ? 'add' : e.kind);
        const [reader, ...others] = reads.get(e.output) ?? [];
        const into = foldInto.get(e);
        if (into && e.kind === 'batchNorm2d') this.values.set(e.output, this.foldedConv(into.conv, into.name, e.args));
        else if (e.kind === 'conv2d' && !e.epilogue && others.length === 0 && reader?.kind === 'batchNorm2d' && this.canFold(reader.args)) {
          foldInto.set(reader, { conv: e, name });
        } else this.values.set(e.output, this.op(e, name));
      }
    }
    return this.value(traced.output);
  }

  private value(t: Tensor): string {
    const name = this.values.get(t);
    if (name === undefined) throw new TypeError(`ONNX export: the pass used a tensor ${t} that no exported op computed`);
    return name;
  }

  private op(op: TracedOp, name: string): string {
    switch (op.kind) {
      case 'conv2d':
        if (op.epilogue) throw new TypeError(`${name}: no ONNX export for a convolution with a fused epilogue`);
        return this.conv(op, name);
      case 'batchNorm2d':
        return this.batchNorm(op.args, name, this.value(op.x));
      case 'relu':
        return this.graph.node('Relu', name, [this.value(op.x)]);
      case 'add':
        return this.graph.node('Add', name, [this.value(op.a), this.value(op.b)]);
      case 'maxPool2d':
        return this.graph.node('MaxPool', name, [this.value(op.x)], {
          kernel_shape: op.params.kernel,
          strides: op.params.stride,
          pads: [...op.params.padding, ...op.params.padding],
          dilations: op.params.dilation,
        });
      case 'adaptiveAvgPool2d':
        // Only the 1×1 output has an ONNX op that takes any H and W.
        if (op.outputSize[0] !== 1 || op.outputSize[1] !== 1) {
          throw new RangeError(`${name}: ONNX export supports AdaptiveAvgPool2d to 1×1 only, got ${op.outputSize.join('×')}`);
        }
        return this.graph.node('GlobalAveragePool', name, [this.value(op.x)]);
      case 'flatten':
        return this.graph.node('Flatten', name, [this.value(op.x)], { axis: op.startDim });
      case 'linear': {
        const inputs = [this.value(op.x), this.graph.initializer(`${name}.weight`, op.weight)];
        if (op.bias) inputs.push(this.graph.initializer(`${name}.bias`, op.bias));
        return this.graph.node('Gemm', name, inputs, { transB: 1 }); // y = x·Wᵀ + b
      }
      case 'subsamplePadChannels': {
        // x[:, :, ::s, ::s] as Slice over H and W (ends past any size), then zero channels by Pad.
        const { stride, before, after } = op;
        const sliced = this.graph.node('Slice', `${name}.slice`, [
          this.value(op.x),
          this.graph.int64s(`${name}.starts`, [0, 0]),
          this.graph.int64s(`${name}.ends`, [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]),
          this.graph.int64s(`${name}.axes`, [2, 3]),
          this.graph.int64s(`${name}.steps`, [stride, stride]),
        ]);
        // pads: [N, C, H, W] at the start, then at the end.
        return this.graph.node('Pad', name, [sliced, this.graph.int64s(`${name}.pads`, [0, before, 0, 0, 0, after, 0, 0])]);  // mode 'constant', value 0: the defaults
      }
    }
  }

  private canFold(bn: BatchNormArgs): boolean {
    return this.fold && bn.runningMean !== null && bn.runningVar !== null;
  }

  /** conv → BatchNorm as one Conv with the BatchNorm folded in (plan/fold.ts's arithmetic). */
  private foldedConv(conv: ConvOp, name: string, bn: BatchNormArgs): string {
    const { weight, bias } = foldedWeights(conv.weight, conv.bias, bn);
    const inputs = [this.value(conv.x), this.graph.initializer(`${name}.weight_folded`, weight), this.graph.initializer(`${name}.bias_folded`, bias)];
    return this.graph.node('Conv', name, inputs, this.convAttributes(conv));
  }

  private conv(conv: ConvOp, name: string): string {
    const inputs = [this.value(conv.x), this.graph.initializer(`${name}.weight`, conv.weight)];
    if (conv.bias) inputs.push(this.graph.initializer(`${name}.bias`, conv.bias));
    return this.graph.node('Conv', name, inputs, this.convAttributes(conv));
  }

  private convAttributes(conv: ConvOp): Record<string, AttributeValue> {
    const [, , kh, kw] = conv.weight.shape;
    return {
      kernel_shape: [kh, kw],
      strides: conv.params.stride,
      pads: [...conv.params.padding, ...conv.params.padding], // [top, left, bottom, right]
      dilations: conv.params.dilation,
      group: conv.params.groups,
    };
  }

  /** Eval-mode BatchNormalization over the running statistics. */
  private batchNorm(bn: BatchNormArgs, name: string, x: string): string {
    if (!bn.runningMean || !bn.runningVar) {
      throw new RangeError(`${name}: BatchNorm2d without running statistics normalises by batch statistics, which ONNX inference cannot express`);
    }
    const c = bn.runningMean.shape[0];
    const inputs = [
      x,
      bn.weight ? this.graph.initializer(`${name}.weight`, bn.weight) : this.graph.initializer(`${name}.weight`, new Float32Array(c).fill(1), [c]),
      bn.bias ? this.graph.initializer(`${name}.bias`, bn.bias) : this.graph.initializer(`${name}.bias`, new Float32Array(c), [c]),
      this.graph.initializer(`${name}.running_mean`, bn.runningMean),
      this.graph.initializer(`${name}.running_var`, bn.runningVar),
    ];
    return this.graph.node('BatchNormalization', name, inputs, { epsilon: { float: bn.eps } });
  }
}

function tensorType(dims: (number | string)[]): object {
  return {
    tensor_type: {
      elem_type: FLOAT,
      shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
    },
  };
}

/** The graph's input and output value names. */
export const ONNX_INPUT_NAME = 'input';
export const ONNX_OUTPUT_NAME = 'logits';

/**
 * The ONNX model (serialised ModelProto bytes) of `model` with its current weights, in eval
 * mode: input 'input' float32 [N, 3, H, W], output 'logits' float32 [N, numClasses], with N,
 * H and W symbolic.
 */
export function exportOnnx(model: AnyResNet, options: OnnxExportOptions = {}): Uint8Array {
  const graph = new GraphBuilder([ONNX_INPUT_NAME, ONNX_OUTPUT_NAME]);
  const writer = new OnnxWriter(graph, options.foldBatchNorm ?? true);
  // Traced at one size; no op of the pass depends on N, H or W, so the graph takes any.
  const last = writer.write(model, traceEval(model, [1, model.conv1.inChannels, 224, 224]), ONNX_INPUT_NAME);
  // Rename the last node's output to the graph output.
  const lastNode = graph.nodes.at(-1);
  if (!lastNode || lastNode.output[0] !== last) throw new Error('the model produced no ONNX nodes');
  lastNode.output[0] = ONNX_OUTPUT_NAME;

  const Model = modelProto();
  const message = Model.fromObject({
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    producer_name: 'resnet-ts',
    doc_string: options.foldBatchNorm === false ? 'BatchNorm as BatchNormalization nodes (eval mode)' : 'BatchNorm folded into the convolutions',
    metadata_props: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: options.graphName ?? 'resnet',
      node: graph.nodes,
      initializer: graph.initializers,
      input: [{ name: ONNX_INPUT_NAME, type: tensorType(['N', model.conv1.inChannels, 'H', 'W']) }],
      output: [{ name: ONNX_OUTPUT_NAME, type: tensorType(['N', model.fc.outFeatures]) }],
    },
  });
  const bytes = Model.encode(message).finish(); // a Buffer in Node
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
