// The one error type the weight-file readers throw for corrupt, truncated, hostile or
// unsupported input, so callers can tell "bad file" apart from a bug in resnet-ts.

export { WeightFileError } from '../core/errors.js';
