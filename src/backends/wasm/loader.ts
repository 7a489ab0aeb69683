// Finds, validates and compiles wasm/kernels.wasm (SIMD128 + relaxed SIMD) or, where relaxed
// SIMD does not validate, wasm/kernels-simd.wasm; creates the one shared memory every thread
// uses, and instantiates the module on it with a given stack.

import type { KernelExports } from './kernels.js';

/** Which build of csrc/kernels.c runs: relaxed SIMD (FMA where the CPU has it) or plain SIMD128. */
export type WasmVariant = 'relaxed' | 'simd';

const FILES: Record<WasmVariant, string> = { relaxed: 'kernels.wasm', simd: 'kernels-simd.wasm' };

// Keep in step with scripts/build-wasm.sh (--initial-memory, --max-memory, -z stack-size).
const PAGE_BYTES = 65536;
export const MEMORY_INITIAL_PAGES = (16 * 1024 * 1024) / PAGE_BYTES;
export const MEMORY_MAX_PAGES = 65536; // 4 GiB, all that wasm32 addresses
/** Each worker thread's stack, as large as the main thread's (linked with -z stack-size). */
export const STACK_BYTES = 1024 * 1024;

/** The Node built-ins we use, when running on Node (sync access needs Node >= 20.16). */
export interface NodeApi {
  fs: typeof import('node:fs');
  v8: typeof import('node:v8');
  os: typeof import('node:os');
  workerThreads: typeof import('node:worker_threads');
}

export const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

let nodeApi: NodeApi | null = null;

/** Node's built-ins, synchronously; null outside Node. */
export function nodeSync(): NodeApi | null {
  if (!isNode || nodeApi) return nodeApi;
  if (typeof process.getBuiltinModule !== 'function') {
    throw new Error('the wasm backend needs Node >= 20.16 to start synchronously; on older Node call `await initWasmBackend()` first');
  }
  nodeApi = {
    fs: process.getBuiltinModule('node:fs'),
    v8: process.getBuiltinModule('node:v8'),
    os: process.getBuiltinModule('node:os'),
    workerThreads: process.getBuiltinModule('node:worker_threads'),
  };
  return nodeApi;
}

/** Node's built-ins on any Node version (dynamic import); null outside Node. */
export async function nodeAsync(): Promise<NodeApi | null> {
  if (!isNode || nodeApi) return nodeApi;
  const [fs, v8, os, workerThreads] = await Promise.all([import('node:fs'), import('node:v8'), import('node:os'), import('node:worker_threads')]);
  nodeApi = { fs, v8, os, workerThreads };
  return nodeApi;
}

/** Where the .wasm files ship: <package>/wasm/, four levels above dist/src/backends/wasm/. */
export function wasmUrl(variant: WasmVariant): URL {
  return new URL(`../../../../wasm/${FILES[variant]}`, import.meta.url);
}

/** A .wasm file's bytes (compile wants them in a plain ArrayBuffer). */
export type WasmBytes = Uint8Array<ArrayBuffer>;

export interface CompiledKernels {
  module: WebAssembly.Module;
  variant: WasmVariant;
}

/**
 * Picks the build to run from the bytes of both: relaxed SIMD if the engine validates it
 * (Node 20's V8 needs --experimental-wasm-relaxed-simd, which we set before asking), else
 * plain SIMD128. `prefer: 'simd'` skips the relaxed build.
 */
export function chooseVariant(relaxed: WasmBytes | null, prefer: WasmVariant | 'auto', node: NodeApi | null): WasmVariant {
  if (prefer === 'simd' || !relaxed) return 'simd';
  if (WebAssembly.validate(relaxed)) return 'relaxed';
  if (node) {
    node.v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    if (WebAssembly.validate(relaxed)) return 'relaxed';
  }
  if (prefer === 'relaxed') throw new Error('this engine does not support WebAssembly relaxed SIMD');
  return 'simd';
}

/** Reads and compiles the kernels synchronously (Node; `new WebAssembly.Module` is allowed there). */
export function compileKernelsSync(prefer: WasmVariant | 'auto', bytes?: Partial<Record<WasmVariant, WasmBytes>>): CompiledKernels {
  const node = nodeSync();
  const read = (variant: WasmVariant): WasmBytes => {
    const given = bytes?.[variant];
    if (given) return given;
    if (!node) throw new Error('in a browser, call `await initWasmBackend()` (or pass the .wasm bytes) before using the wasm backend');
    return node.fs.readFileSync(wasmUrl(variant));
  };
  const variant = chooseVariant(prefer === 'simd' ? null : read('relaxed'), prefer, node);
  return { module: new WebAssembly.Module(read(variant)), variant };
}

/** Fetches (browser) or reads (Node) and compiles the kernels without blocking. */
export async function compileKernels(prefer: WasmVariant | 'auto', bytes?: Partial<Record<WasmVariant, WasmBytes>>): Promise<CompiledKernels> {
  const node = await nodeAsync();
  const read = async (variant: WasmVariant): Promise<WasmBytes> => {
    const given = bytes?.[variant];
    if (given) return given;
    if (node) return node.fs.readFileSync(wasmUrl(variant));
    const response = await fetch(wasmUrl(variant));
    if (!response.ok) throw new Error(`cannot fetch ${wasmUrl(variant)}: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  };
  const variant = chooseVariant(prefer === 'simd' ? null : await read('relaxed'), prefer, node);
  return { module: await WebAssembly.compile(await read(variant)), variant };
}

/** The memory all threads share; `maxBytes` may be below the module's 4 GiB limit. */
export function createSharedMemory(maxBytes: number): WebAssembly.Memory {
  const maximum = Math.min(MEMORY_MAX_PAGES, Math.max(MEMORY_INITIAL_PAGES, Math.floor(maxBytes / PAGE_BYTES)));
  return new WebAssembly.Memory({ initial: MEMORY_INITIAL_PAGES, maximum, shared: true });
}

/**
 * Instantiates the kernels on the shared memory. The module's start function initialises its
 * data once for all instances. Every instance starts on the linker's stack; give all but the
 * first its own (`stackTop`, the high end: the stack grows down).
 */
export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory, stackTop?: number): KernelExports {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const exports = instance.exports as unknown as KernelExports;
  if (stackTop !== undefined) exports.__stack_pointer.value = stackTop;
  return exports;
}
