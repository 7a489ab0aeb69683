// The browser platform (see types.ts), which bundlers take for '#platform' by the `browser`
// condition: the .wasm builds and the wasm worker's script are embedded in the bundle (generated
// modules), so that every bundler, esbuild included, delivers them with no configuration; the
// worker starts from a Blob URL. Images decode with createImageBitmap, weights download with
// fetch into the Cache Storage, checked with crypto.subtle.

import { DownloadError, ImageFileError } from '../core/errors.js';
import { canvasPixels } from './canvas.js';
import { readResponseBody } from './response-body.js';
import { crc32 } from '../core/crc32.js';
import type { DecodedSamples, Platform, ThreadPort, WasmBytes, WasmVariant } from './types.js';
import { WASM_KERNELS_BASE64 } from './wasm-kernels.generated.js';
import { WASM_WORKER_SOURCE } from './wasm-worker.generated.js';

const scope = globalThis as typeof globalThis & { crossOriginIsolated?: boolean; document?: unknown };

const wasmBytes = new Map<WasmVariant, WasmBytes>();

function embeddedWasm(variant: WasmVariant): WasmBytes {
  let bytes = wasmBytes.get(variant);
  if (!bytes) {
    const text = atob(WASM_KERNELS_BASE64[variant]);
    bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    wasmBytes.set(variant, bytes);
  }
  return bytes;
}

let workerUrl: string | undefined;

/** The Blob URL of the wasm worker's script, made once per page. */
function wasmWorkerUrl(): string {
  workerUrl ??= URL.createObjectURL(new Blob([WASM_WORKER_SOURCE], { type: 'text/javascript' }));
  return workerUrl;
}

/** The Cache Storage bucket downloaded weights are kept in. */
export const WEIGHTS_CACHE = 'resnet-ts-weights';

async function openCache(): Promise<Cache | null> {
  if (typeof caches === 'undefined') return null; // not a secure context (https or localhost)
  try {
    return await caches.open(WEIGHTS_CACHE);
  } catch {
    return null; // storage disabled (a private window, say)
  }
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  if (!globalThis.crypto?.subtle) {
    throw new DownloadError('cannot check the SHA-256 of downloaded weights: crypto.subtle needs a secure context (https or localhost)', false);
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The response's body, reporting progress as it arrives. */
async function readBody(url: string, response: Response, progress: (loaded: number, total: number | undefined) => void): Promise<Uint8Array> {
  const length = response.headers.get('content-length');
  // A compressed transfer's length is that of the compressed bytes: no total then.
  const total = length !== null && /^\d+$/.test(length) && !response.headers.get('content-encoding') ? Number(length) : undefined;
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  progress(0, total);
  const onChunk = (chunk: Uint8Array): void => {
    chunks.push(chunk);
    loaded += chunk.length;
    progress(loaded, total);
  };
  await readResponseBody(url, response, onChunk, () => loaded);
  if (total !== undefined && loaded !== total) throw new DownloadError(`download of ${url} ended after ${loaded} of ${total} bytes`, true);
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

export const platform: Platform = {
  name: 'browser',

  warn: (message) => console.warn(message),

  env: () => undefined,

  cores: () => globalThis.navigator?.hardwareConcurrency ?? 1,

  threadsUnavailableReason: () =>
    scope.crossOriginIsolated
      ? null
      : 'the page is not cross-origin isolated (self.crossOriginIsolated is false), so its WebAssembly memory cannot be ' +
        'shared with worker threads. Serve the page with the headers "Cross-Origin-Opener-Policy: same-origin" and ' +
        '"Cross-Origin-Embedder-Policy: require-corp" (or "credentialless") to run on several threads.',

  mayBlock: () => scope.document === undefined,

  wasmBytesSync: (variant) => embeddedWasm(variant),

  wasmBytes: async (variant) => embeddedWasm(variant),

  crc32: (data) => crc32(data),

  enableRelaxedSimd: () => false,

  spawnWasmThread(onMessage, onError): ThreadPort {
    let worker: Worker;
    try {
      worker = new Worker(wasmWorkerUrl(), { name: 'resnet-ts wasm thread' });
    } catch (error) {
      throw new Error(`cannot start a wasm worker thread from a blob: URL (${(error as Error).message}); a Content-Security-Policy must allow worker-src blob:`);
    }
    worker.onmessage = (event: MessageEvent) => onMessage(event.data);
    worker.onmessageerror = () => onError('a message from the worker could not be deserialised');
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      // A script that fails to load raises an ErrorEvent with no message.
      onError(event.message || 'the worker script did not load (a Content-Security-Policy may forbid blob: workers; allow worker-src blob:)');
    };
    return { post: (message) => worker.postMessage(message), keepAlive: () => {}, terminate: () => worker.terminate() };
  },

  loadNativeAddon: () => {
    throw new Error('the native addon runs in Node only; in a browser the wasm backend is the fast one');
  },

  readFile: async (path) => {
    throw new Error(`cannot read '${path}': a browser has no file system; pass the bytes instead (a fetched ArrayBuffer, or a File's arrayBuffer())`);
  },

  async decodeImage(bytes, format, maxPixels): Promise<DecodedSamples> {
    let bitmap: ImageBitmap;
    try {
      // As decoded, without colour management or premultiplied alpha: the pixels PIL reads.
      bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: `image/${format}` }), {
        colorSpaceConversion: 'none',
        premultiplyAlpha: 'none',
      });
    } catch (error) {
      throw new ImageFileError(`the browser could not decode this ${format} image (${(error as Error).message})`, { cause: error });
    }
    try {
      if (bitmap.width * bitmap.height > maxPixels) {
        throw new ImageFileError(`the ${format} image has ${bitmap.width}×${bitmap.height} pixels, more than the ${maxPixels} a ` +
          `${bytes.length}-byte file may claim (DecodeOptions.maxPixels)`);
      }
      const { data, width, height } = canvasPixels(bitmap);
      return { width, height, channels: 4, data, cmyk: false };
    } finally {
      bitmap.close();
    }
  },

  async downloadWeights(url, options) {
    const progress = typeof options.progress === 'function' ? options.progress : () => {};
    const cache = await openCache();
    const cached = await cache?.match(url);
    if (cached) {
      // Only checked bytes are ever put in the cache.
      const bytes = new Uint8Array(await cached.arrayBuffer());
      progress(bytes.length, bytes.length);
      return bytes;
    }
    let response: Response;
    try {
      response = await fetch(url);
    } catch (error) {
      throw new DownloadError(`cannot download ${url}: ${(error as Error).message}`, true, { cause: error });
    }
    if (!response.ok) {
      await response.body?.cancel();
      const { status } = response;
      throw new DownloadError(`cannot download ${url}: HTTP ${status} ${response.statusText}`.trimEnd(), status >= 500 || status === 429 || status === 408, { status });
    }
    const bytes = await readBody(url, response, progress);
    if (options.sha256Prefix) {
      const digest = await sha256Hex(bytes);
      if (!digest.startsWith(options.sha256Prefix)) {
        throw new DownloadError(`invalid hash value for ${url} (expected "${options.sha256Prefix}", got "${digest}")`, false);
      }
    }
    try {
      await cache?.put(url, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } }));
    } catch (error) {
      console.warn(`resnet-ts: could not keep ${url} in the Cache Storage (${(error as Error).message}); the next visit downloads it again`);
    }
    return bytes;
  },

  downloadToCache: async () => {
    throw new Error('downloadToCache keeps files on disk, which a browser has not; use loadStateDictFromUrl (it keeps the file in the Cache Storage)');
  },
};
