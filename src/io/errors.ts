// The one error type the weight-file readers throw for corrupt, truncated, hostile or
// unsupported input, so callers can tell "bad file" apart from a bug in resnet-ts.

export class WeightFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WeightFileError';
  }
}
