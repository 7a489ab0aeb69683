// Weight files in the browser: fetched with progress and kept in the Cache Storage (a second
// visit reads them from there), checked against the SHA-256 prefix torch.hub reads from the
// file name (resnet18-f37072fd.pth → 'f37072fd'), or read from a file the user picked.

import { fileNameOf, sha256PrefixOf } from 'resnet-ts';

const CACHE_NAME = 'resnet-ts-weights';

export interface FetchProgress {
  loaded: number;
  total: number | null;
  fromCache: boolean;
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Reads a response body to the end, reporting bytes as they arrive. */
async function readBody(response: Response, fromCache: boolean, onProgress: (p: FetchProgress) => void): Promise<Uint8Array<ArrayBuffer>> {
  const length = Number(response.headers.get('content-length'));
  const total = Number.isFinite(length) && length > 0 ? length : null;
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress({ loaded, total, fromCache });
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/**
 * The bytes at `url`, from the Cache Storage when an earlier visit put them there. The check
 * prefix defaults to the one in the file name (none: no check); a file that fails it is neither
 * kept nor returned.
 */
export async function fetchWeights(
  url: string,
  options: { sha256Prefix?: string; onProgress?: (p: FetchProgress) => void } = {},
): Promise<{ bytes: Uint8Array<ArrayBuffer>; fromCache: boolean }> {
  const onProgress = options.onProgress ?? (() => {});
  const absolute = new URL(url, self.location.href).href;
  const expected = options.sha256Prefix ?? sha256PrefixOf(fileNameOf(absolute)) ?? '';
  const cache = typeof caches === 'undefined' ? null : await caches.open(CACHE_NAME).catch(() => null);
  const cached = await cache?.match(absolute);
  if (cached) {
    const bytes = await readBody(cached, true, onProgress);
    if (!expected || (await sha256Hex(bytes)).startsWith(expected)) return { bytes, fromCache: true };
    await cache!.delete(absolute); // damaged: fetch it again
  }
  const response = await fetch(absolute);
  if (!response.ok) throw new Error(`cannot fetch ${absolute}: HTTP ${response.status}`);
  const bytes = await readBody(response, false, onProgress);
  if (expected) {
    const actual = await sha256Hex(bytes);
    if (!actual.startsWith(expected)) throw new Error(`${absolute}: SHA-256 ${actual.slice(0, expected.length)}… does not start with ${expected}`);
  }
  await cache?.put(absolute, new Response(bytes, { headers: { 'content-length': String(bytes.length) } })).catch(() => {});
  return { bytes, fromCache: false };
}
