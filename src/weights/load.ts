// Turns a builder's `weights` option — a torchvision weight name, a descriptor, a file path, an
// http(s) URL, or the file's bytes (a browser's File or Blob, an ArrayBuffer) — into a state dict. The download and its cache are the platform's
// (src/platform): a cache directory in Node, the Cache Storage in a browser.

import { platform } from '#platform';
import type { WeightsDownloadOptions } from '../platform/types.js';
import type { Tensor } from '../core/tensor.js';
import { WeightFileError } from '../core/errors.js';
import { loadWeightsFile, readWeights } from '../io/weights.js';
import { IMAGENET_WEIGHTS } from './imagenet.generated.js';
import { fileNameOf, sha256PrefixOf, type WeightsDescriptor, type WeightsName } from './descriptor.js';

/** A weight file's contents: bytes, or a Blob (a File the user picked, say). */
export type WeightsBytes = Uint8Array | ArrayBuffer | Blob;

/** What the builders' `weights` option takes (`(string & {})` keeps the names' autocompletion). */
export type WeightsSpec = WeightsName | WeightsDescriptor | WeightsBytes | (string & {});

/** A resolved `weights`: torchvision's descriptor, a path or URL, or the file's contents. */
export type WeightsSource = WeightsDescriptor | WeightsBytes | string;

function isWeightsBytes(value: unknown): value is WeightsBytes {
  return value instanceof Uint8Array || value instanceof ArrayBuffer || (typeof Blob !== 'undefined' && value instanceof Blob);
}

/** A string that names weights rather than a file: torchvision's enum style, e.g. IMAGENET1K_V2 (a file so named needs a path: ./MODEL). */
const WEIGHTS_NAME = /^[A-Z][A-Z0-9_]*$/;

/** The ImageNet weights torchvision has for `arch`, by name (DEFAULT included); {} if none. */
export function getModelWeights(arch: string): Readonly<Record<string, WeightsDescriptor>> {
  return Object.hasOwn(IMAGENET_WEIGHTS, arch) ? IMAGENET_WEIGHTS[arch as keyof typeof IMAGENET_WEIGHTS] : {};
}

/**
 * The descriptor, file path, URL or contents that `weights` stands for. A weight name the
 * architecture does not have, or another architecture's descriptor, is a RangeError.
 */
export function resolveWeights(arch: string, weights: WeightsDescriptor | string): WeightsDescriptor | string;
export function resolveWeights(arch: string, weights: WeightsSpec): WeightsSource;
export function resolveWeights(arch: string, weights: WeightsSpec): WeightsSource {
  if (isWeightsBytes(weights)) return weights;
  if (typeof weights !== 'string') {
    if (weights.arch !== arch) {
      throw new RangeError(`weights ${weights.arch}.${weights.name} are for ${weights.arch}, not ${arch}`);
    }
    return weights;
  }
  if (!WEIGHTS_NAME.test(weights)) return weights; // a file path or a URL
  const available = getModelWeights(arch);
  if (!Object.hasOwn(available, weights)) {
    const names = Object.keys(available);
    throw new RangeError(`${arch} has no weights '${weights}'; available: ${names.length ? names.join(', ') : 'none'}`);
  }
  return available[weights];
}

export function isHttpUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}

/** The state dict of a descriptor's file or a URL (downloaded to the cache), of a local file (Node), or of a file's contents. */
export async function loadWeights(source: WeightsSource, options: { progress?: CacheOptions['progress'] } = {}): Promise<Map<string, Tensor>> {
  if (isWeightsBytes(source)) return loadWeightsBytes(source);
  if (typeof source === 'string' && !isHttpUrl(source)) return loadWeightsFile(source);
  if (typeof source === 'string') return loadStateDictFromUrl(source, options);
  return loadStateDictFromUrl(source.url, { ...options, fileName: source.fileName, sha256Prefix: source.sha256Prefix });
}

/**
 * The state dict in a weight file's contents (torch zip or legacy, or safetensors, told by
 * content): a File from an <input type="file"> or a drop, a Blob, or bytes.
 */
export async function loadWeightsBytes(contents: WeightsBytes): Promise<Map<string, Tensor>> {
  const name = typeof File !== 'undefined' && contents instanceof File ? contents.name : undefined;
  const bytes = contents instanceof Blob ? new Uint8Array(await contents.arrayBuffer()) : contents instanceof ArrayBuffer ? new Uint8Array(contents) : contents;
  try {
    // Bytes read from a Blob are ours alone: tensors may be views of them rather than copies.
    return readWeights(bytes, { copy: !(contents instanceof Blob) });
  } catch (error) {
    if (name !== undefined && error instanceof WeightFileError) throw new WeightFileError(`${name}: ${error.message}`, { cause: error });
    throw error;
  }
}

export interface CacheOptions {
  /** Progress: on stderr in Node (default true); or a callback (bytes so far, total if known), in Node and browsers. */
  progress?: boolean | ((loaded: number, total: number | undefined) => void);
  /** Name in the cache; default: the URL's last path segment. */
  fileName?: string;
  /** First hex digits the file's SHA-256 must start with; default: the prefix the file name carries (torch.hub's check_hash). */
  sha256Prefix?: string;
  /** Check the SHA-256 prefix at all. Default true. */
  checkHash?: boolean;
  /** Node: the cache directory; default <$RESNET_TS_HOME or ~/.cache/resnet-ts>/checkpoints. */
  modelDir?: string;
  /** Node: failed attempts in a row, none of which received data, before giving up (default 5). */
  retries?: number;
  /** Node: wait before the first retry, doubled with each failure in a row, up to 30 s (default 1000). */
  retryDelayMs?: number;
}

function downloadOptions(url: string, options: CacheOptions): WeightsDownloadOptions {
  const fileName = options.fileName ?? fileNameOf(url);
  const sha256Prefix = options.checkHash === false ? '' : (options.sha256Prefix ?? sha256PrefixOf(fileName) ?? '');
  return { ...options, fileName, sha256Prefix };
}

/**
 * torch.hub.load_state_dict_from_url: downloads `url` once, checked against its SHA-256 prefix,
 * and reads the state dict. Node keeps the file in a cache directory, a browser in the Cache
 * Storage, so a second call (or visit) does not download again.
 */
export async function loadStateDictFromUrl(url: string, options: CacheOptions = {}): Promise<Map<string, Tensor>> {
  const bytes = await platform.downloadWeights(url, downloadOptions(url, options));
  try {
    // The bytes are ours alone: tensors may be views of them rather than copies.
    return readWeights(bytes, { copy: false });
  } catch (error) {
    if (error instanceof WeightFileError) throw new WeightFileError(`${url}: ${error.message}`, { cause: error });
    throw error;
  }
}

/** The cached file for `url` (Node only), downloaded first if needed. */
export async function downloadToCache(url: string, options: CacheOptions = {}): Promise<string> {
  return platform.downloadToCache(url, downloadOptions(url, options));
}
