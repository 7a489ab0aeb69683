// The error a weight download fails with. It is a WeightFileError (a file that could not be
// had), so callers that handle bad weight files handle failed downloads too.

export { DownloadError } from '../core/errors.js';
