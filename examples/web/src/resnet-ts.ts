// What the page imports as 'resnet-ts' (vite.config.ts's alias): the package built at the
// repository root, plus the one browser entry point its root module does not export yet.
export * from '../../../dist/src/index.js';
export { initWasmBackend } from '../../../dist/src/backends/index.js';
