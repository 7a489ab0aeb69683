// Exports a ResNet as an ONNX model (opset 17, IR version 8) written from the module tree:
// each module type states the ONNX nodes it computes, with torch's module paths as node
// and value names, so the graph reads like `resnet summary --depth 3`. The input is
// float32 (N, 3, H, W) with N, H and W symbolic; the output is (N, numClasses) logits.
// Eval-mode semantics: BatchNorm uses its running statistics, folded into the convolution
// before it by default (the same folding as nn/fuse.ts), or kept as BatchNormalization.
//
// Encoded with protobufjs from the subset of onnx.proto below (field numbers as in
// https://github.com/onnx/onnx/blob/main/onnx/onnx.proto; fields we never write are left out).

import protobuf from 'protobufjs';
import type { Tensor } from '../core/tensor.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Identity, Linear, MaxPool2d, ReLU, Sequential } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { foldedConvWeights } from '../nn/fuse.js';
import { BasicBlock, Bottleneck, ResNet } from '../models/resnet.js';
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
    const data = tensor instanceof Float32Array ? tensor : tensor.f32;
    this.initializers.push({ name: unique, dims: [...(shape ?? (tensor as Tensor).shape)], data_type: FLOAT, raw_data: encodeLittleEndian(data) });
    return unique;
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

/** Writes the ONNX nodes of each module type; `emit` returns the name of the module's output value. */
class OnnxWriter {
  constructor(private readonly graph: GraphBuilder, private readonly fold: boolean) {}

  emit(module: Module, name: string, x: string): string {
    if (module instanceof ResNet) return this.resnet(module, name, x);
    if (module instanceof BasicBlock || module instanceof Bottleneck) return this.block(module, name, x);
    if (module instanceof Sequential) return this.sequential(module, name, x);
    if (module instanceof Conv2d) return this.conv(module, name, x);
    if (module instanceof BatchNorm2d) return this.batchNorm(module, name, x);
    if (module instanceof ReLU) return this.graph.node('Relu', name, [x]);
    if (module instanceof Identity) return x;
    if (module instanceof MaxPool2d) {
      return this.graph.node('MaxPool', name, [x], {
        kernel_shape: module.kernelSize,
        strides: module.stride,
        pads: [...module.padding, ...module.padding],
        dilations: module.dilation,
      });
    }
    if (module instanceof AdaptiveAvgPool2d) {
      // Only the 1×1 output has an ONNX op that takes any H and W.
      if (module.outputSize[0] !== 1 || module.outputSize[1] !== 1) {
        throw new RangeError(`${name}: ONNX export supports AdaptiveAvgPool2d to 1×1 only, got ${module.outputSize.join('×')}`);
      }
      return this.graph.node('GlobalAveragePool', name, [x]);
    }
    if (module instanceof Flatten) return this.graph.node('Flatten', name, [x], { axis: module.startDim });
    if (module instanceof Linear) {
      const inputs = [x, this.graph.initializer(`${name}.weight`, module.weight)];
      if (module.bias) inputs.push(this.graph.initializer(`${name}.bias`, module.bias));
      return this.graph.node('Gemm', name, inputs, { transB: 1 }); // y = x·Wᵀ + b
    }
    throw new TypeError(`${name || 'model'}: no ONNX export for ${module.typeName}`);
  }

  /** ResNet.forward: stem, four stages, then avgpool → flatten → fc. */
  private resnet(model: ResNet, name: string, x: string): string {
    x = this.convNorm(model.conv1, join(name, 'conv1'), model.bn1, join(name, 'bn1'), x);
    x = this.emit(model.relu, join(name, 'relu'), x);
    x = this.emit(model.maxpool, join(name, 'maxpool'), x);
    for (const stage of ['layer1', 'layer2', 'layer3', 'layer4'] as const) x = this.emit(model[stage], join(name, stage), x);
    x = this.emit(model.avgpool, join(name, 'avgpool'), x);
    x = this.graph.node('Flatten', join(name, 'flatten'), [x], { axis: 1 });
    return this.emit(model.fc, join(name, 'fc'), x);
  }

  /** BasicBlock / Bottleneck.forward: relu(bn(conv(…relu(bn(conv(x))))) + shortcut(x)). */
  private block(block: BasicBlock | Bottleneck, name: string, x: string): string {
    const identity = block.downsample ? this.emit(block.downsample, join(name, 'downsample'), x) : x;
    const pairs: [Conv2d, string, Module, string][] = [[block.conv1, 'conv1', block.bn1, 'bn1'], [block.conv2, 'conv2', block.bn2, 'bn2']];
    if (block instanceof Bottleneck) pairs.push([block.conv3, 'conv3', block.bn3, 'bn3']);
    let out = x;
    pairs.forEach(([conv, convName, norm, normName], i) => {
      out = this.convNorm(conv, join(name, convName), norm, join(name, normName), out);
      if (i < pairs.length - 1) out = this.emit(block.relu, join(name, 'relu'), out);
    });
    out = this.graph.node('Add', join(name, 'add'), [out, identity]);
    return this.emit(block.relu, join(name, 'relu'), out);
  }

  /** Runs the layers in order; a Conv2d followed by a BatchNorm2d (a downsample) is folded as a pair. */
  private sequential(sequential: Sequential, name: string, x: string): string {
    const layers = sequential.layers;
    for (let i = 0; i < layers.length; i++) {
      const layer = layers[i];
      const next = layers[i + 1];
      if (layer instanceof Conv2d && next !== undefined && this.canFold(next)) {
        x = this.convNorm(layer, join(name, String(i)), next, join(name, String(i + 1)), x);
        i++;
      } else {
        x = this.emit(layer, join(name, String(i)), x);
      }
    }
    return x;
  }

  private canFold(norm: Module): norm is BatchNorm2d {
    return this.fold && norm instanceof BatchNorm2d && norm.runningMean !== null && norm.runningVar !== null;
  }

  /** conv → norm, as one Conv with the BatchNorm folded in, or as Conv → BatchNormalization. */
  private convNorm(conv: Conv2d, convName: string, norm: Module, normName: string, x: string): string {
    if (!this.canFold(norm)) return this.emit(norm, normName, this.conv(conv, convName, x));
    const { weight, bias } = foldedConvWeights(conv, norm);
    const inputs = [x, this.graph.initializer(`${convName}.weight_folded`, weight), this.graph.initializer(`${convName}.bias_folded`, bias)];
    return this.graph.node('Conv', convName, inputs, this.convAttributes(conv));
  }

  private conv(conv: Conv2d, name: string, x: string): string {
    const inputs = [x, this.graph.initializer(`${name}.weight`, conv.weight)];
    if (conv.bias) inputs.push(this.graph.initializer(`${name}.bias`, conv.bias));
    return this.graph.node('Conv', name, inputs, this.convAttributes(conv));
  }

  private convAttributes(conv: Conv2d): Record<string, AttributeValue> {
    return {
      kernel_shape: conv.kernelSize,
      strides: conv.stride,
      pads: [...conv.padding, ...conv.padding], // [top, left, bottom, right]
      dilations: conv.dilation,
      group: conv.groups,
    };
  }

  /** Eval-mode BatchNormalization over the running statistics. */
  private batchNorm(bn: BatchNorm2d, name: string, x: string): string {
    if (!bn.runningMean || !bn.runningVar) {
      throw new RangeError(`${name}: BatchNorm2d without running statistics normalises by batch statistics, which ONNX inference cannot express`);
    }
    const c = bn.numFeatures;
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
export function exportOnnx(model: ResNet, options: OnnxExportOptions = {}): Uint8Array {
  const graph = new GraphBuilder([ONNX_INPUT_NAME, ONNX_OUTPUT_NAME]);
  const writer = new OnnxWriter(graph, options.foldBatchNorm ?? true);
  const last = writer.emit(model, '', ONNX_INPUT_NAME);
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
      input: [{ name: ONNX_INPUT_NAME, type: tensorType(['N', 3, 'H', 'W']) }],
      output: [{ name: ONNX_OUTPUT_NAME, type: tensorType(['N', model.fc.outFeatures]) }],
    },
  });
  const bytes = Model.encode(message).finish(); // a Buffer in Node
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
