// Registers the built-in backends; import backends from here so that they are available.

import { registerBackend } from './backend.js';
import { createReferenceBackend } from './ref/kernels.js';
import { createMetaBackend } from './meta.js';

registerBackend('ref', createReferenceBackend);
registerBackend('meta', createMetaBackend);

export * from './backend.js';
export { createReferenceBackend } from './ref/kernels.js';
