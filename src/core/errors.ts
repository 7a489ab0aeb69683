// The typed errors for input that could not be had or read: a bad weight file, a failed
// download, an image that does not decode. They sit at the bottom so that every layer, the
// platform code included, throws the same classes.

/** A corrupt, truncated, hostile or unsupported weight file, told apart from a bug in resnet-ts. */
export class WeightFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WeightFileError';
  }
}

/** A weight download that failed; a WeightFileError (a file that could not be had), so callers that handle bad weight files handle it too. */
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

/** A file that is not an image we decode, or a corrupt, truncated or unreadable one. */
export class ImageFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageFileError';
  }
}
