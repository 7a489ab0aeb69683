// The public API of resnet-ts in Node: tensors, the ResNet family and its registry, layers,
// backends, weights, images — the browser entry (web.ts) — and ONNX export.

export * from './web.js';
// Data sets read files with Node's fs: the Node entry only, for now.
export * from './data/index.js';
export { exportOnnx, ONNX_OPSET, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME, type OnnxExportOptions } from './tools/onnx.js';
