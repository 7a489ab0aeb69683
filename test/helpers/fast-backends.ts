// The fast backends every kernel test body runs on: the native addon's builds (AVX-512F,
// AVX2+FMA, portable) and the WebAssembly builds (relaxed SIMD, plain SIMD128), each on 1 and 2
// threads. A build this machine cannot run is listed with the reason, for a skipped test.

import { after } from 'node:test';
import type { Backend } from '../../src/backends/index.js';
import { createNativeBackend, nativeAvailable } from '../../src/backends/native/index.js';
import { createWasmBackend } from '../../src/backends/wasm/index.js';

export interface Fast {
  tag: string;
  /** Runs fn on this backend (the native pool's thread count is per process: set before each use). */
  use<T>(fn: (b: Backend) => T): T;
}

/** Options every backend of the list is created with (both kinds take them). */
export interface FastOptions {
  inputGradientByConvolution?: boolean;
}

/** The builds this machine runs, and those it cannot with the reason; wasm pools are disposed after the file's tests. */
export function fastBackends(options: FastOptions = {}): { runnable: Fast[]; unrunnable: { tag: string; why: string }[] } {
  const runnable: Fast[] = [];
  const unrunnable: { tag: string; why: string }[] = [];
  const disposers: (() => void)[] = [];
  after(() => disposers.forEach((d) => d()));

  // Native: every build the addon has for this architecture.
  const nativeBuilds = process.arch === 'x64' ? ['avx512f', 'avx2-fma', 'scalar'] : process.arch === 'arm64' ? ['neon'] : ['scalar'];
  const cpuRuns = nativeAvailable() ? createNativeBackend().isas() : [];
  for (const isa of nativeBuilds) {
    for (const threads of [1, 2]) {
      const tag = `native ${isa} ×${threads}`;
      if (!nativeAvailable()) unrunnable.push({ tag, why: 'native addon not built (node scripts/install-native.js)' });
      else if (!cpuRuns.includes(isa)) unrunnable.push({ tag, why: `this CPU cannot run the ${isa} build (it runs ${cpuRuns.join(', ')}): compiled, not run here` });
      else {
        // splitSmallOps, as for wasm: the small test shapes run sliced on 2 threads too.
        const backend = createNativeBackend({ isa, threads, splitSmallOps: threads > 1, ...options });
        runnable.push({ tag, use: (fn) => (backend.setThreads(threads), fn(backend)) });
      }
    }
  }
  // WebAssembly: relaxed SIMD where the engine validates it, and plain SIMD128.
  for (const variant of ['relaxed', 'simd'] as const) {
    for (const threads of [1, 2]) {
      const tag = `wasm ${variant} ×${threads}`;
      try {
        // splitSmallOps: even small ops run on every thread, so the slicing of each is exercised.
        const backend = createWasmBackend({ variant, threads, splitSmallOps: threads > 1, ...options });
        disposers.push(() => backend.dispose());
        runnable.push({ tag, use: (fn) => fn(backend) });
      } catch (error) {
        unrunnable.push({ tag, why: `this engine cannot run it: ${(error as Error).message}` });
      }
    }
  }
  return { runnable, unrunnable };
}
