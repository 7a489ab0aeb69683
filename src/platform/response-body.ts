// Reads a fetch Response's body chunk by chunk, for the weight downloads of both platforms.

import { DownloadError } from '../core/errors.js';

/**
 * Hands each chunk of `response`'s body to `onChunk` as it arrives. A transfer that breaks off is
 * a retryable DownloadError saying how many bytes (`received()`) had come; `reason` words the cause.
 */
export async function readResponseBody(
  url: string, response: Response, onChunk: (chunk: Uint8Array) => unknown, received: () => number,
  reason: (error: unknown) => string = (error) => (error as Error).message,
): Promise<void> {
  const reader = response.body!.getReader();
  for (;;) {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch (error) {
      throw new DownloadError(`download of ${url} broke off after ${received()} bytes: ${reason(error)}`, true, { cause: error });
    }
    if (chunk.done) return;
    await onChunk(chunk.value);
  }
}
