// Turns a builder's `weights` option — a torchvision weight name, a descriptor, a file path or
// an http(s) URL — into a state dict. Usable in browsers: the file-system and network code
// (download.ts) is imported only when it is called, and only in Node.

import type { Tensor } from '../core/tensor.js';
import type { CacheOptions } from './download.js';
import { IMAGENET_WEIGHTS } from './imagenet.generated.js';
import type { WeightsDescriptor, WeightsName } from './descriptor.js';

/** What the builders' `weights` option takes (`(string & {})` keeps the names' autocompletion). */
export type WeightsSpec = WeightsName | WeightsDescriptor | (string & {});

/** A string that names weights rather than a file: torchvision's enum style, e.g. IMAGENET1K_V2 (a file so named needs a path: ./MODEL). */
const WEIGHTS_NAME = /^[A-Z][A-Z0-9_]*$/;

/** The ImageNet weights torchvision has for `arch`, by name (DEFAULT included); {} if none. */
export function getModelWeights(arch: string): Readonly<Record<string, WeightsDescriptor>> {
  return Object.hasOwn(IMAGENET_WEIGHTS, arch) ? IMAGENET_WEIGHTS[arch as keyof typeof IMAGENET_WEIGHTS] : {};
}

/**
 * The descriptor, file path or URL that `weights` stands for. A weight name the architecture
 * does not have, or another architecture's descriptor, is a RangeError.
 */
export function resolveWeights(arch: string, weights: WeightsSpec): WeightsDescriptor | string {
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

/** The state dict of a descriptor's file or a URL (downloaded to the cache), or of a local file. */
export async function loadWeights(source: WeightsDescriptor | string, options: { progress?: boolean } = {}): Promise<Map<string, Tensor>> {
  if (typeof source === 'string' && !isHttpUrl(source)) {
    const { loadWeightsFile } = await import('../io/weights.js');
    return loadWeightsFile(source);
  }
  if (typeof source === 'string') return loadStateDictFromUrl(source, options);
  return loadStateDictFromUrl(source.url, { ...options, fileName: source.fileName, sha256Prefix: source.sha256Prefix });
}

/** torch.hub.load_state_dict_from_url (Node only): downloads to the cache once, then reads it. */
export async function loadStateDictFromUrl(url: string, options: CacheOptions = {}): Promise<Map<string, Tensor>> {
  return (await importDownload()).loadStateDictFromUrl(url, options);
}

/** The cached file for `url` (Node only), downloaded first if needed; see download.ts. */
export async function downloadToCache(url: string, options: CacheOptions = {}): Promise<string> {
  return (await importDownload()).downloadToCache(url, options);
}

async function importDownload(): Promise<typeof import('./download.js')> {
  if (typeof process === 'undefined' || !process.versions?.node) {
    throw new Error('downloading weights needs Node; in a browser, fetch the file and load it with model.loadStateDict(readWeights(bytes))');
  }
  return import('./download.js');
}
