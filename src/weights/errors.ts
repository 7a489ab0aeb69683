// The error a weight download fails with. It is a WeightFileError (a file that could not be
// had), so callers that handle bad weight files handle failed downloads too.

import { WeightFileError } from '../io/errors.js';

export class DownloadError extends WeightFileError {
  /** The HTTP status of the response that failed, if there was one. */
  readonly status: number | undefined;

  constructor(
    message: string,
    /** Whether trying again may succeed: network errors, 5xx and 429 responses, short transfers. */
    readonly retryable: boolean,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options);
    this.name = 'DownloadError';
    this.status = options?.status;
  }
}
