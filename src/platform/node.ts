// The Node.js platform (see types.ts): the package's files on disk, worker_threads, sharp, and a
// download cache in a directory. The only module of src/ outside the CLI that imports Node's
// built-ins; a browser bundle takes browser.ts instead ('#platform' in package.json).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import { crc32 } from '../core/crc32.js';
import { WeightFileError } from '../core/errors.js';
import type { Platform, ThreadPort, WasmBytes, WasmVariant } from './types.js';

const WASM_FILES: Record<WasmVariant, string> = { relaxed: 'kernels.wasm', simd: 'kernels-simd.wasm' };

/** Where the .wasm files ship: <package>/wasm/, three levels above dist/src/platform/. */
function wasmUrl(variant: WasmVariant): URL {
  return new URL(`../../../wasm/${WASM_FILES[variant]}`, import.meta.url);
}

/** The worker script of the wasm backend's thread pool (a Web Worker script), and what runs it in a worker_threads Worker. */
const wasmWorkerUrl = new URL('../backends/wasm/worker.js', import.meta.url);
const nodeThreadUrl = new URL('./node-thread.js', import.meta.url);

let relaxedSimdFlagSet = false;

/** The addon, or null where it is not built or does not load (the wasm and reference backends still work). */
function nativeAddonOrNull(): unknown {
  try {
    return platform.loadNativeAddon();
  } catch {
    return null;
  }
}

let chosenCrc32: ((data: Uint8Array) => number) | null = null;

/**
 * The fastest CRC-32 here: the addon's carry-less folding where it exports one (about 14 GB/s on a
 * Zen 4 core), else zlib.crc32 (about 4; Node 20.15 and 22.2 on), else the TypeScript sum (about 1).
 */
function fastestCrc32(): (data: Uint8Array) => number {
  if (chosenCrc32) return chosenCrc32;
  const addon = nativeAddonOrNull() as { crc32?: (data: Uint8Array, crc: number) => number } | null;
  const fromZlib = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
  if (typeof addon?.crc32 === 'function') {
    const folded = addon.crc32;
    chosenCrc32 = (data) => folded(data, 0);
  } else if (typeof fromZlib === 'function') {
    chosenCrc32 = fromZlib;
  } else {
    chosenCrc32 = (data) => crc32(data);
  }
  return chosenCrc32;
}

export const platform: Platform = {
  name: 'node',

  warn: (message) => process.emitWarning(message),

  env: (name) => process.env[name],

  cores: () => availableParallelism(),

  threadsUnavailableReason: () => null,

  mayBlock: () => true,

  wasmBytesSync: (variant) => readFileSync(wasmUrl(variant)) as WasmBytes,

  wasmBytes: async (variant) => (await readFile(wasmUrl(variant))) as WasmBytes,

  crc32: (data) => fastestCrc32()(data),

  enableRelaxedSimd() {
    if (relaxedSimdFlagSet) return false;
    relaxedSimdFlagSet = true;
    setFlagsFromString('--experimental-wasm-relaxed-simd');
    return true;
  },

  spawnWasmThread(onMessage, onError): ThreadPort {
    const worker = new Worker(nodeThreadUrl, { workerData: { script: wasmWorkerUrl.href } });
    worker.on('message', onMessage);
    worker.on('error', (error: Error) => onError(error.message));
    // Idle workers must not keep the process alive (unref after adding listeners, which ref).
    worker.unref();
    return {
      post: (message) => worker.postMessage(message),
      keepAlive: (on) => (on ? worker.ref() : worker.unref()),
      terminate: () => void worker.terminate(),
    };
  },

  // dist/src/platform/node.js → <package root>/build/Release.
  loadNativeAddon: () => createRequire(import.meta.url)('../../../build/Release/resnet_native.node'),

  readFile: async (path) => {
    const buffer = await readFile(path);
    // A plain Uint8Array over the Buffer's memory, so .slice() copies as everywhere else.
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  },

  async decodeImage(bytes, format, maxPixels) {
    const { decodeWithSharp } = await import('./node-decode.js');
    return decodeWithSharp(bytes, format, maxPixels);
  },

  async downloadToCache(url, options) {
    const { downloadToCache } = await import('./node-download.js');
    return downloadToCache(url, options);
  },

  async downloadWeights(url, options) {
    const path = await platform.downloadToCache(url, options);
    try {
      return await platform.readFile(path);
    } catch (error) {
      throw new WeightFileError(`${path}: ${(error as Error).message}`, { cause: error });
    }
  },
};
