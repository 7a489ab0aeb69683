// Registers the built-in backends; import backends from here so that they are available.

import { registerBackend } from './backend.js';
import { createReferenceBackend } from './ref/kernels.js';
import { createMetaBackend } from './meta.js';
import { defaultWasmBackend } from './wasm/index.js';
import { defaultNativeBackend, nativeAvailable } from './native/index.js';

registerBackend('ref', createReferenceBackend);
registerBackend('meta', createMetaBackend);
registerBackend('wasm', defaultWasmBackend);
if (nativeAvailable()) registerBackend('native', defaultNativeBackend); // only where the addon is built

export * from './backend.js';
export { createReferenceBackend } from './ref/kernels.js';
export { referenceBackwardKernels, type BackwardKernels } from './ref/backward.js';
export { createWasmBackend, initWasmBackend, type WasmBackend, type WasmBackendOptions } from './wasm/index.js';
export { nativeUnavailableReason } from './native/index.js';
