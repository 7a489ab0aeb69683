// Loads a state dict from a weight file of any supported format, chosen by content
// rather than extension. loadWeightsFile reads a path through the platform (Node's file
// system; a browser has none), so the byte-level readers stay usable in browsers.

import { platform } from '#platform';
import type { Tensor } from '../core/tensor.js';
import { WeightFileError } from './errors.js';
import type { ReadOptions } from './elements.js';
import { readSafetensors } from './safetensors.js';
import { isTorchLegacy, isTorchZip, loadStateDictFromTorch } from './torch.js';

export type WeightFileFormat = 'torch-zip' | 'torch-legacy' | 'safetensors';

/** Safetensors opens with a u64 header length that fits the file, then the JSON's '{'. */
function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  return headerLength >= 2n && headerLength <= BigInt(bytes.length - 8) && bytes[8] === 0x7b; // '{'
}

/** The format of a weight file, from its first bytes; undefined if it is none we read. */
export function detectWeightFormat(bytes: Uint8Array): WeightFileFormat | undefined {
  if (isTorchZip(bytes)) return 'torch-zip';
  if (isTorchLegacy(bytes)) return 'torch-legacy';
  if (isSafetensors(bytes)) return 'safetensors';
  return undefined;
}

/** The state dict (name → Tensor, in file order) in the bytes of a torch or safetensors file. */
export function readWeights(bytes: Uint8Array, options: ReadOptions = {}): Map<string, Tensor> {
  const format = detectWeightFormat(bytes);
  if (format === undefined) {
    throw new WeightFileError('not a torch or safetensors file (expected a torch.save zip, a legacy torch pickle or safetensors)');
  }
  return format === 'safetensors' ? readSafetensors(bytes, options) : loadStateDictFromTorch(bytes, options);
}

/** Reads `path` and returns its state dict; every failure is a WeightFileError naming the path. */
export async function loadWeightsFile(path: string): Promise<Map<string, Tensor>> {
  let bytes: Uint8Array;
  try {
    bytes = await platform.readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : (error as Error).message;
    throw new WeightFileError(`${path}: ${reason}`, { cause: error });
  }
  try {
    // The bytes are ours alone: tensors may be views of them rather than copies.
    return readWeights(bytes, { copy: false });
  } catch (error) {
    if (error instanceof WeightFileError) throw new WeightFileError(`${path}: ${error.message}`, { cause: error });
    throw error;
  }
}
