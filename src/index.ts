// The public API of resnet-ts: tensors, the ResNet family and its registry, layers, backends,
// autograd and optimizers.

export { Tensor, numel, shapesEqual, type DType, type Shape } from './core/tensor.js';
export { Generator, manualSeed } from './core/rng.js';
export { getBackend, setBackend, listBackends, type Backend } from './backends/index.js';
export * as F from './ops/functional.js';
export { ShapeError } from './ops/functional.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './ops/autograd.js';
export * as optim from './optim/index.js';
export { Module, StateDictError, type StateDict, type LoadStateDictResult } from './nn/module.js';
export * from './nn/layers.js';
export * as init from './nn/init.js';
export { ResNet, BasicBlock, Bottleneck, conv1x1, conv3x3, type ResNetOptions, type NormLayer, type BlockType } from './models/resnet.js';
export * from './models/builders.js';
export * from './io/index.js';
export * from './preprocess/index.js';
export * from './weights/index.js';
export { extractFeatures, featureInfo, type FeatureInfo } from './models/features.js';
export { exportOnnx, ONNX_OPSET, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME, type OnnxExportOptions } from './tools/onnx.js';
export { writeTorchStateDict } from './io/torch-writer.js';
export { drawDiagram, type DiagramOptions } from './tools/diagram.js';
