// Raw element bytes → the two Tensor dtypes, shared by every weight-file reader: the
// element types files store, their decoding (floats widen/narrow to float32, integers
// and bools widen to int64), and strided views gathered into contiguous data.

import { type Shape, type TensorData, numel, shapeToString } from '../core/tensor.js';
import { WeightFileError } from './errors.js';
import { bfloat16ToFloat32, float16ToFloat32 } from './halfs.js';

/** An element type as a weight file stores it (torch storage, safetensors, npy). */
export type FileDType =
  | 'float32' | 'float16' | 'bfloat16' | 'float64'
  | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'uint16' | 'uint32' | 'bool';

export const ELEMENT_SIZE: Readonly<Record<FileDType, number>> = {
  float32: 4, float16: 2, bfloat16: 2, float64: 8,
  int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, uint16: 2, uint32: 4, bool: 1,
};

export function isFloatDType(dtype: FileDType): boolean {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16' || dtype === 'float64';
}

const HOST_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * A fresh, aligned copy of `bytes` in host byte order: typed-array views need both, and
 * the copy also detaches the result from the (possibly huge) file buffer.
 */
function hostOrderCopy(bytes: Uint8Array, elementSize: number, littleEndian: boolean): ArrayBuffer {
  const copy = new Uint8Array(bytes); // not bytes.slice(): on a node Buffer that is a view
  if (littleEndian !== HOST_LITTLE_ENDIAN && elementSize > 1) {
    for (let i = 0; i < copy.length; i += elementSize) copy.subarray(i, i + elementSize).reverse();
  }
  return copy.buffer;
}

/** Options of the readers that decode tensors from a file's bytes. */
export interface ReadOptions {
  /**
   * Copy every tensor out of `bytes` (default). false: tensors stored as float32 or int64, in
   * host order and aligned, are views of `bytes` — for bytes nobody else will change (a file
   * just read), so a model is not held twice.
   */
  copy?: boolean;
  /**
   * Bytes a torch file may grow into beyond the storages it holds: what its deflated zip records
   * inflate to, plus the copies its tensor views need — a view with zero or overlapping strides
   * (`torch.zeros(1).expand(2**28)`: 1 element stored, 2^28 claimed), or one of several views
   * of a storage. Tensors are materialised contiguously when the file is read, so these copies
   * are real memory. Default: 4 × the file's size + 64 MiB; beyond it the reader throws a
   * WeightFileError naming the tensor. Infinity lifts the limit.
   */
  expansionLimit?: number;
}

/** ReadOptions.expansionLimit's default for a file of `fileBytes` bytes. */
export function defaultExpansionLimit(fileBytes: number): number {
  return 4 * fileBytes + 64 * 2 ** 20;
}

/**
 * Decodes `bytes` (a whole number of `dtype` elements) into float32 data for float types
 * (float64 rounds to nearest float32, as torch's .float() does) or int64 data otherwise.
 * With `copy` false, float32 and int64 data already in host order and aligned is returned as
 * a view of `bytes` (for callers that own the bytes: no second copy of a model in memory).
 */
export function decodeElements(bytes: Uint8Array, dtype: FileDType, littleEndian = true, copy = true): TensorData {
  const size = ELEMENT_SIZE[dtype];
  if (bytes.length % size !== 0) {
    throw new WeightFileError(`${bytes.length} bytes is not a whole number of ${dtype} elements`);
  }
  if (!copy && littleEndian === HOST_LITTLE_ENDIAN && bytes.byteOffset % size === 0) {
    if (dtype === 'float32') return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    if (dtype === 'int64') return new BigInt64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8);
  }
  const buffer = hostOrderCopy(bytes, size, littleEndian);
  switch (dtype) {
    case 'float32': return new Float32Array(buffer);
    case 'float64': return Float32Array.from(new Float64Array(buffer));
    case 'float16': return float16ToFloat32(new Uint16Array(buffer));
    case 'bfloat16': return bfloat16ToFloat32(new Uint16Array(buffer));
    case 'int64': return new BigInt64Array(buffer);
    case 'int32': return widenToInt64(new Int32Array(buffer));
    case 'int16': return widenToInt64(new Int16Array(buffer));
    case 'int8': return widenToInt64(new Int8Array(buffer));
    case 'uint8': return widenToInt64(new Uint8Array(buffer));
    case 'uint16': return widenToInt64(new Uint16Array(buffer));
    case 'uint32': return widenToInt64(new Uint32Array(buffer));
    case 'bool': return widenToInt64(new Uint8Array(buffer).map((b) => (b === 0 ? 0 : 1)));
  }
}

function widenToInt64(values: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]);
  return out;
}

/** The little-endian bytes of a tensor's data (float32 → 4 bytes, int64 → 8 bytes each). */
export function encodeLittleEndian(data: TensorData): Uint8Array {
  const bytes = new Uint8Array(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (!HOST_LITTLE_ENDIAN) {
    const size = data.BYTES_PER_ELEMENT;
    for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
  }
  return bytes;
}

/**
 * The most dimensions a tensor read from a file may have: numpy 2's limit (torch has none, but
 * a shape of millions of zero-length dimensions would cost memory and time and hold nothing).
 */
export const MAX_RANK = 64;

export function checkRank(rank: number, what: string): void {
  if (rank > MAX_RANK) throw new WeightFileError(`${what}: ${rank} dimensions, more than the ${MAX_RANK} a tensor may have`);
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Checks that the view (offset, size, stride) — element (i0, i1, ...) at
 * offset + Σ ik·stride[k] — reads only elements [0, storageLength) of its storage.
 * Strides may be any non-negative integers (transposes, broadcasts with stride 0).
 */
export function checkStridedView(
  storageLength: number, offset: unknown, size: readonly unknown[], stride: readonly unknown[], what: string,
): void {
  if (!isIndex(offset)) throw new WeightFileError(`${what}: invalid storage offset ${String(offset)}`);
  checkRank(size.length, what);
  if (size.length !== stride.length) {
    throw new WeightFileError(`${what}: size has ${size.length} dims but stride has ${stride.length}`);
  }
  if (!size.every(isIndex) || !stride.every(isIndex)) {
    throw new WeightFileError(`${what}: invalid size [${size.join(', ')}] or stride [${stride.join(', ')}]`);
  }
  if (numel(size) === 0) return; // reads nothing
  let last = offset;
  for (let k = 0; k < size.length; k++) last += (size[k] - 1) * stride[k];
  if (last >= storageLength) {
    throw new WeightFileError(
      `${what}: view (offset ${offset}, size ${shapeToString(size)}, stride ${shapeToString(stride)}) ` +
      `reads element ${last} of a ${storageLength}-element storage`);
  }
}

/** Whether (size, stride) is the row-major layout of `size`. */
export function isContiguous(size: Shape, stride: Shape): boolean {
  let expected = 1;
  for (let k = size.length - 1; k >= 0; k--) {
    if (size[k] === 1) continue; // a length-1 dim's stride never matters
    if (stride[k] !== expected) return false;
    expected *= size[k];
  }
  return true;
}

/**
 * Copies a strided view of `data` into a new contiguous row-major array. The view must
 * already have passed checkStridedView.
 */
export function gatherStrided(data: TensorData, offset: number, size: Shape, stride: Shape): TensorData {
  const n = numel(size);
  if (isContiguous(size, stride)) return data.slice(offset, offset + n) as TensorData;
  return data instanceof BigInt64Array
    ? gatherInto(new BigInt64Array(n), data, offset, size, stride)
    : gatherInto(new Float32Array(n), data, offset, size, stride);
}

function gatherInto<Out extends { [i: number]: V; length: number }, V>(
  out: Out, data: { readonly [i: number]: V }, offset: number, size: Shape, stride: Shape,
): Out {
  const rank = size.length;
  const index = new Array<number>(rank).fill(0);
  let source = offset;
  // Odometer over the output in row-major order; `source` follows the input strides.
  for (let i = 0; i < out.length; i++) {
    out[i] = data[source];
    for (let k = rank - 1; k >= 0; k--) {
      if (++index[k] < size[k]) {
        source += stride[k];
        break;
      }
      index[k] = 0;
      source -= (size[k] - 1) * stride[k];
    }
  }
  return out;
}
