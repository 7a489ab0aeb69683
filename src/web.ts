// The public API of resnet-ts for browsers (package.json: the `browser` condition of 'resnet-ts',
// and 'resnet-ts/web'): everything of the Node entry (index.ts) but ONNX export. Its module graph
// holds no Node module: platform code comes from '#platform', which a bundler building for a
// browser resolves to src/platform/browser.ts.

export { Tensor, numel, shapesEqual, type DType, type Shape } from './core/tensor.js';
export { Generator, manualSeed } from './core/rng.js';
export {
  getBackend, setBackend, listBackends, withBackend, BackendSettingError, type Backend,
  createWasmBackend, initWasmBackend, type WasmBackend, type WasmBackendOptions,
} from './backends/index.js';
export type { WasmVariant } from './backends/wasm/loader.js';
export * as F from './ops/functional.js';
export { ShapeError } from './ops/functional.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './ops/autograd.js';
export * as optim from './optim/index.js';
export { Module, StateDictError, type StateDict, type LoadStateDictResult } from './nn/module.js';
export * from './nn/layers.js';
export * as init from './nn/init.js';
export { ResNet, BasicBlock, Bottleneck, conv1x1, conv3x3, type ResNetOptions, type NormLayer, type BlockType } from './models/resnet.js';
export { CifarResNet, ShortcutA } from './models/resnet-cifar.js';
export * from './models/builders.js';
export * from './io/index.js';
export * from './preprocess/index.js';
export * from './weights/index.js';
export { extractFeatures, featureInfo, type FeatureInfo } from './models/features.js';
export { writeTorchStateDict } from './io/torch-writer.js';
export { drawDiagram, type DiagramOptions } from './tools/diagram.js';
export { summarize, formatCount, formatScaled, type LayerSummary, type ModelSummary } from './tools/summary.js';
export {
  ModelWorker, serveModelWorker, type ModelSpec, type WorkerResult, type MessageEndpoint,
  type ToModelWorker, type FromModelWorker, type TensorMessage,
} from './web/model-worker.js';
