// What resnet-ts needs of the JavaScript platform it runs on, as one interface with two
// implementations: node.ts (file system, worker_threads, sharp, a download cache on disk) and
// browser.ts (fetch and Cache Storage, Web Workers, createImageBitmap). Modules import the
// implementation as '#platform' (package.json "imports"): bundlers building for a browser take
// browser.ts by the `browser` condition, so no Node module is ever in a browser bundle.

/** Which build of csrc/kernels.c: relaxed SIMD (FMA where the CPU has it) or plain SIMD128. */
export type WasmVariant = 'relaxed' | 'simd';

/** A .wasm file's bytes (compile wants them in a plain ArrayBuffer). */
export type WasmBytes = Uint8Array<ArrayBuffer>;

/** A started wasm worker thread, as the thread pool sees it. */
export interface ThreadPort {
  post(message: unknown): void;
  /** Whether the thread keeps a Node process alive: only while someone awaits it. */
  keepAlive(on: boolean): void;
  terminate(): void;
}

/** Samples as a decoder hands them over: 8-bit, HWC, 1 to 4 channels, or CMYK (4 channels, PIL's convention). */
export interface DecodedSamples {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array | Uint8ClampedArray;
  cmyk: boolean;
}

export interface WeightsDownloadOptions {
  /** Name in the cache (the file name torchvision's URL ends with). */
  fileName: string;
  /** First hex digits the file's SHA-256 must start with; '' checks nothing. */
  sha256Prefix: string;
  /** Progress: on stderr in Node (true by default); a callback anywhere. */
  progress?: boolean | ((loaded: number, total: number | undefined) => void);
  /** Node: the cache directory (default <resnetHome()>/checkpoints). */
  modelDir?: string;
  /** Node: failed attempts in a row before giving up (default 5), and the first wait (ms). */
  retries?: number;
  retryDelayMs?: number;
}

export interface Platform {
  readonly name: 'node' | 'browser';
  /** One warning for the user: process.emitWarning in Node, console.warn in a browser. */
  warn(message: string): void;
  /** An environment variable (Node); undefined in a browser. */
  env(name: string): string | undefined;
  /** Cores to run on: os.availableParallelism(), navigator.hardwareConcurrency. */
  cores(): number;
  /** Why worker threads cannot share the wasm memory here (a browser page that is not cross-origin isolated); null when they can. */
  threadsUnavailableReason(): string | null;
  /** Whether this thread may block in Atomics.wait (a page's main thread may not). */
  mayBlock(): boolean;
  /** The .wasm bytes of a build, synchronously (read from the package, or embedded). */
  wasmBytesSync(variant: WasmVariant): WasmBytes;
  /** The same without blocking. */
  wasmBytes(variant: WasmVariant): Promise<WasmBytes>;
  /** The CRC-32 of bytes, as zip records carry it (Node's zlib where it has one; plain TypeScript otherwise). */
  crc32(data: Uint8Array): number;
  /** Lets the engine validate relaxed SIMD where a flag gates it (Node 20); whether anything changed. */
  enableRelaxedSimd(): boolean;
  /** Starts a wasm worker thread (src/backends/wasm/worker.ts); it reports back through `onMessage`. */
  spawnWasmThread(onMessage: (message: unknown) => void, onError: (message: string) => void): ThreadPort;
  /** The native addon, build/Release/resnet_native.node (Node); throws where it is not built or cannot load. */
  loadNativeAddon(): unknown;
  /** A file's bytes (Node); a browser has no file system and throws. */
  readFile(path: string): Promise<Uint8Array>;
  /** Decodes JPEG, PNG or WebP bytes (format checked by the caller) into samples, refusing more than `maxPixels`. */
  decodeImage(bytes: Uint8Array, format: string, maxPixels: number): Promise<DecodedSamples>;
  /**
   * The bytes of a weight file at `url`, downloaded once and then kept (a cache directory in
   * Node, the Cache Storage in a browser), checked against the SHA-256 prefix.
   */
  downloadWeights(url: string, options: WeightsDownloadOptions): Promise<Uint8Array>;
  /** Node: the path of the cached file for `url`, downloaded first if needed; a browser has no files and throws. */
  downloadToCache(url: string, options: WeightsDownloadOptions): Promise<string>;
}
