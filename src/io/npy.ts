// Reads and writes numpy .npy files, the format our golden fixtures and parity dumps use.
//
// Layout: "\x93NUMPY" | major | minor | header length (u16 LE for v1, u32 LE for v2/v3) |
// header, a Python dict literal such as "{'descr': '<f4', 'fortran_order': False,
// 'shape': (2, 3), }" padded with spaces and "\n" so the data starts 64-byte aligned | data.

import { Tensor, type Shape, numel } from '../core/tensor.js';
import { ELEMENT_SIZE, type FileDType, checkRank, decodeElements, encodeLittleEndian, gatherStrided } from './elements.js';
import { WeightFileError } from './errors.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const ALIGN = 64;
/** numpy leaves room to grow the first axis in place: its repr is padded to this many digits. */
const GROWTH_AXIS_MAX_DIGITS = 21;
/** numpy's own limit on the header dict (np.lib.format's _MAX_HEADER_SIZE, numpy ≥ 1.24). */
const MAX_HEADER_BYTES = 10_000;

/** Type codes after the byte-order character of a descr such as '<f4'. */
const TYPE_CODES: Readonly<Record<string, FileDType>> = {
  f2: 'float16', f4: 'float32', f8: 'float64',
  i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64', u1: 'uint8', u2: 'uint16', u4: 'uint32', b1: 'bool',
};

interface NpyHeader {
  readonly dtype: FileDType;
  readonly littleEndian: boolean;
  readonly fortranOrder: boolean;
  readonly shape: number[];
}

function parseHeader(text: string): NpyHeader {
  const bad = (what: string): never => {
    throw new WeightFileError(`npy: ${what} in header ${JSON.stringify(text.trim())}`);
  };
  const trimmed = text.trim();
  if (!trimmed.startsWith('{') || !trimmed.endsWith('}')) bad('not a dict literal');
  const descr = /['"]descr['"]\s*:\s*['"]([<>|=])([a-z]\d+)['"]/.exec(trimmed) ?? bad('missing, structured or non-numeric descr');
  const dtype = TYPE_CODES[descr[2]] ?? bad(`unsupported dtype '${descr[1]}${descr[2]}'`);
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(trimmed) ?? bad('missing fortran_order');
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(trimmed) ?? bad('missing shape');
  const shape = shapeText[1].split(',').map((d) => d.trim()).filter((d) => d !== '')
    .map((d) => (/^\d+L?$/.test(d) ? parseInt(d, 10) : bad(`invalid dimension '${d}'`)));
  if (!shape.every(Number.isSafeInteger)) bad('dimension too large');
  checkRank(shape.length, 'npy');
  // '<' little, '>' big, '|' single-byte, '=' native (every host we run on is little-endian).
  return { dtype, littleEndian: descr[1] !== '>', fortranOrder: fortran[1] === 'True', shape };
}

/**
 * The array in a .npy file (versions 1.0, 2.0, 3.0) as a row-major Tensor: float types
 * become float32, integer and bool types int64. Fortran-order arrays are transposed into
 * row-major order.
 */
export function readNpy(bytes: Uint8Array): Tensor {
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) throw new WeightFileError('npy: missing \\x93NUMPY magic');
  const major = bytes[6];
  if (major < 1 || major > 3) throw new WeightFileError(`npy: unsupported format version ${major}.${bytes[7]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const prefix = major === 1 ? 10 : 12;
  if (bytes.length < prefix) throw new WeightFileError('npy: truncated header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = prefix + headerLength;
  if (dataStart > bytes.length) throw new WeightFileError(`npy: header length ${headerLength} exceeds the file`);
  if (headerLength > MAX_HEADER_BYTES) {
    throw new WeightFileError(`npy: header of ${headerLength} bytes is longer than numpy's limit of ${MAX_HEADER_BYTES}`);
  }
  // v1/v2 headers are latin-1, v3 UTF-8; the fields we read are ASCII either way.
  const header = parseHeader(new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(prefix, dataStart)));

  const n = numel(header.shape);
  const byteLength = n * ELEMENT_SIZE[header.dtype];
  if (bytes.length - dataStart < byteLength) {
    throw new WeightFileError(`npy: data has ${bytes.length - dataStart} bytes, shape needs ${byteLength}`);
  }
  const data = decodeElements(bytes.subarray(dataStart, dataStart + byteLength), header.dtype, header.littleEndian);
  if (!header.fortranOrder) return new Tensor(data, header.shape);
  // Fortran order: element (i0, i1, ...) sits at i0 + i1·d0 + i2·d0·d1 + ...
  const stride: number[] = [];
  header.shape.reduce((s, d) => (stride.push(s), s * d), 1);
  return new Tensor(gatherStrided(data, 0, header.shape, stride), header.shape);
}

function pythonTupleRepr(shape: Shape): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/**
 * A version 1.0 .npy file of `t` ('<f4' or '<i8'), byte for byte what numpy.save writes
 * for the same array.
 */
export function writeNpy(t: Tensor): Uint8Array {
  const descr = t.dtype === 'int64' ? '<i8' : '<f4';
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${pythonTupleRepr(t.shape)}, }`;
  if (t.shape.length > 0) dict += ' '.repeat(GROWTH_AXIS_MAX_DIGITS - String(t.shape[0]).length);
  // numpy always adds 1..64 spaces of padding before the "\n", even when already aligned.
  const unpadded = MAGIC.length + 2 + 2 + dict.length + 1;
  const header = dict + ' '.repeat(ALIGN - (unpadded % ALIGN)) + '\n';
  if (header.length > 0xffff) throw new RangeError('npy: header too long for format 1.0');
  const data = encodeLittleEndian(t.data);
  const out = new Uint8Array(10 + header.length + data.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(data, 10 + header.length);
  return out;
}
