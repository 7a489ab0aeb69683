// Validates and compiles wasm/kernels.wasm (SIMD128 + relaxed SIMD) or, where relaxed SIMD does
// not validate, wasm/kernels-simd.wasm; creates the one shared memory every thread uses, and
// instantiates the module on it (kernels.ts). The bytes come from the platform: read from
// the package in Node, embedded in the bundle in a browser (src/platform/).

import { platform } from '#platform';
import type { WasmBytes, WasmVariant } from '../../platform/types.js';

export type { WasmBytes, WasmVariant } from '../../platform/types.js';

// Keep in step with scripts/build-wasm.sh (--initial-memory, --max-memory, -z stack-size).
const PAGE_BYTES = 65536;
export const MEMORY_INITIAL_PAGES = (16 * 1024 * 1024) / PAGE_BYTES;
export const MEMORY_MAX_PAGES = 65536; // 4 GiB, all that wasm32 addresses
/** Each worker thread's stack, as large as the main thread's (linked with -z stack-size). */
export const STACK_BYTES = 1024 * 1024;

export interface CompiledKernels {
  module: WebAssembly.Module;
  variant: WasmVariant;
}

/**
 * Picks the build to run from the bytes of both: relaxed SIMD if the engine validates it
 * (Node 20's V8 needs --experimental-wasm-relaxed-simd, which we set before asking), else
 * plain SIMD128. `prefer: 'simd'` skips the relaxed build.
 */
export function chooseVariant(relaxed: WasmBytes | null, prefer: WasmVariant | 'auto', enableRelaxedSimd: (() => boolean) | null): WasmVariant {
  if (prefer === 'simd' || !relaxed) return 'simd';
  if (WebAssembly.validate(relaxed)) return 'relaxed';
  if (enableRelaxedSimd?.() && WebAssembly.validate(relaxed)) return 'relaxed';
  if (prefer === 'relaxed') throw new Error('this engine does not support WebAssembly relaxed SIMD');
  return 'simd';
}

/**
 * Compiles the kernels synchronously (Node; in a browser inside a worker, or on the main thread
 * where the engine allows a module of this size to compile there: Chrome's limit is 8 MB).
 */
export function compileKernelsSync(prefer: WasmVariant | 'auto', bytes?: Partial<Record<WasmVariant, WasmBytes>>): CompiledKernels {
  const read = (variant: WasmVariant): WasmBytes => bytes?.[variant] ?? platform.wasmBytesSync(variant);
  const variant = chooseVariant(prefer === 'simd' ? null : read('relaxed'), prefer, platform.enableRelaxedSimd);
  return { module: new WebAssembly.Module(read(variant)), variant };
}

/** Compiles the kernels without blocking. */
export async function compileKernels(prefer: WasmVariant | 'auto', bytes?: Partial<Record<WasmVariant, WasmBytes>>): Promise<CompiledKernels> {
  const read = async (variant: WasmVariant): Promise<WasmBytes> => bytes?.[variant] ?? platform.wasmBytes(variant);
  const variant = chooseVariant(prefer === 'simd' ? null : await read('relaxed'), prefer, platform.enableRelaxedSimd);
  return { module: await WebAssembly.compile(await read(variant)), variant };
}

/** The memory all threads share; `maxBytes` may be below the module's 4 GiB limit. */
export function createSharedMemory(maxBytes: number): WebAssembly.Memory {
  const maximum = Math.min(MEMORY_MAX_PAGES, Math.max(MEMORY_INITIAL_PAGES, Math.floor(maxBytes / PAGE_BYTES)));
  try {
    return new WebAssembly.Memory({ initial: MEMORY_INITIAL_PAGES, maximum, shared: true });
  } catch (error) {
    // The kernels are built for shared memory; a browser may refuse it to a page that is not
    // cross-origin isolated (Chromium allows it, and the backend then runs on one thread).
    const reason = platform.threadsUnavailableReason();
    throw new Error(`cannot create the wasm backend's shared memory (${(error as Error).message})${reason ? `: ${reason}` : ''}`, { cause: error });
  }
}
